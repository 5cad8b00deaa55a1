"""JWTs from an identity provider, as an alternative to virtual keys (`auth.jwt`).

A bearer token shaped like a JWT (three base64url parts) is verified here: its algorithm
against `allowed_algorithms` (`none` never; HS* only against the configured `secret`, never
against an RSA or EC key), its signature, `exp`/`nbf` with a small leeway, `iss` and `aud`.
A valid token stands for the team its `team_claim` names (looked up by name, or id, in
the key index's in-memory teams) with `user_claim` as the end user.

Keys come from one PEM file, or from a JWKS fetched with aiohttp: at start-up, again in
the background every `jwks_ttl_seconds`, and on a `kid` it does not hold, at most once per
`jwks_min_refresh_seconds`. So verification is synchronous (a dict lookup and the
signature check) unless a token names an unknown `kid` (or the start-up fetch failed):
only then does `principal` return an awaitable, which fetches and verifies.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from llm_gateway.core.context import Principal, Scope
from llm_gateway.core.errors import AuthenticationFailed, PermissionDenied
from llm_gateway.core.governance_config import JWTSettings

log = logging.getLogger("llm_gateway.jwt")

JWT_SHAPE = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$")

TeamLookup = Callable[[str], Scope | None]
PublicKey = Any
"""An RSA, EC or Ed25519 public key (cryptography), as PyJWT verifies with."""


def looks_like_jwt(token: str) -> bool:
    return JWT_SHAPE.match(token) is not None


def _refused(message: str, code: str = "invalid_jwt") -> AuthenticationFailed:
    return AuthenticationFailed(message, code=code)


def _family_matches(alg: str, key: PublicKey) -> bool:
    if alg.startswith(("RS", "PS")):
        return isinstance(key, rsa.RSAPublicKey)
    if alg.startswith("ES"):
        return isinstance(key, ec.EllipticCurvePublicKey)
    if alg == "EdDSA":
        return isinstance(key, ed25519.Ed25519PublicKey)
    return False


def keys_of_jwks(document: Any) -> dict[str | None, PublicKey]:
    """A JWKS's asymmetric public keys by `kid`; symmetric (`oct`) and unusable keys are skipped."""
    keys: dict[str | None, PublicKey] = {}
    for entry in document.get("keys", []) if isinstance(document, dict) else []:
        if not isinstance(entry, dict) or entry.get("kty") not in ("RSA", "EC", "OKP"):
            continue
        if entry.get("use", "sig") != "sig":
            continue
        try:
            keys[entry.get("kid")] = jwt.PyJWK.from_dict(entry).key
        except jwt.PyJWKError as exc:
            log.warning("skipping a JWKS key (kid %r): %s", entry.get("kid"), exc)
    return keys


class JWTVerifier:
    looks_like = staticmethod(looks_like_jwt)
    """For callers that hold a verifier but do not import this module (it loads PyJWT and
    cryptography, ~8 MiB, which only a config with `auth.jwt` needs)."""

    def __init__(
        self,
        settings: JWTSettings,
        teams: TeamLookup,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self._teams = teams
        self._clock = clock
        self._keys: dict[str | None, PublicKey] = {}
        self._fetched_at: float | None = None
        """When the JWKS was last fetched, or tried (`clock`); None: never."""
        self._fetch_lock = asyncio.Lock()
        self._timer: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None
        self.fetches = 0
        if settings.public_key_file is not None:
            key = load_pem_public_key(Path(settings.public_key_file.get_secret_value()).read_bytes())
            self._keys = {None: key}

    # -- key material -------------------------------------------------------------------

    async def start(self) -> None:
        """Fetch the JWKS (a failure is logged: the first token then fetches) and keep it fresh."""
        if self.settings.jwks_url is None:
            return
        await self.refresh_quietly()
        self._timer = asyncio.get_running_loop().create_task(self._refresh_forever())

    async def refresh(self) -> None:
        """Fetch the JWKS now and swap it in whole."""
        assert self.settings.jwks_url is not None
        url = self.settings.jwks_url.get_secret_value()
        self._fetched_at = self._clock()
        self.fetches += 1
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5))
        async with self._session.get(url) as response:
            response.raise_for_status()
            document = await response.json(content_type=None)
        keys = keys_of_jwks(document)
        if not keys:
            raise ValueError("the JWKS holds no usable signing key")
        self._keys = keys

    async def refresh_quietly(self) -> None:
        try:
            await self.refresh()
        except Exception as exc:
            log.warning("could not fetch the JWKS (keeping the last keys): %s", exc)

    async def _refresh_forever(self) -> None:
        while True:
            await asyncio.sleep(self.settings.jwks_ttl_seconds)
            await self.refresh_quietly()

    def _may_refetch(self) -> bool:
        if self.settings.jwks_url is None:
            return False
        return (
            self._fetched_at is None
            or self._clock() - self._fetched_at >= self.settings.jwks_min_refresh_seconds
        )

    async def _refetch_then(self, token: str, kid: str | None) -> Principal:
        async with self._fetch_lock:  # concurrent unknown kids share one fetch
            if kid not in self._keys and self._may_refetch():
                await self.refresh_quietly()
        key = self._key_for(kid)
        if key is None:
            raise _refused("JWT signing key is unknown (no such kid in the JWKS)", "jwt_unknown_key")
        return self._principal(self._claims(token, key))

    def _key_for(self, kid: str | None) -> PublicKey | None:
        if self.settings.public_key_file is not None:  # one key: whatever kid a token names
            return self._keys[None]
        if kid in self._keys:
            return self._keys[kid]
        if kid is None and len(self._keys) == 1:
            return next(iter(self._keys.values()))
        return None

    async def aclose(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            await asyncio.gather(self._timer, return_exceptions=True)
        if self._session is not None:
            await self._session.close()

    # -- verification -------------------------------------------------------------------

    def principal(self, token: str) -> Principal | Awaitable[Principal]:
        """The caller `token` authenticates as; a 401 saying why when it does not, a 403 for
        a team the gateway does not know. Awaitable only when the JWKS must be fetched first."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise _refused("invalid JWT: malformed header") from None
        alg = header.get("alg")
        if not isinstance(alg, str) or alg.lower() == "none":
            raise _refused("JWT refused: unsigned tokens (alg none) are never accepted", "jwt_alg_none")
        if alg not in self.settings.allowed_algorithms:
            raise _refused(f"JWT refused: algorithm {alg} is not allowed", "jwt_alg_not_allowed")
        if alg.startswith("HS"):
            secret = self.settings.secret
            if secret is None:  # unreachable by validation; never fall back to a public key
                raise _refused(f"JWT refused: algorithm {alg} is not allowed", "jwt_alg_not_allowed")
            return self._principal(self._claims(token, secret.get_secret_value()))
        kid = header.get("kid")
        kid = kid if isinstance(kid, str) else None
        key = self._key_for(kid)
        if key is None:
            if self._may_refetch():
                return self._refetch_then(token, kid)
            raise _refused("JWT signing key is unknown (no such kid in the JWKS)", "jwt_unknown_key")
        return self._principal(self._claims(token, key))

    def _claims(self, token: str, key: PublicKey | str) -> dict[str, Any]:
        header_alg = jwt.get_unverified_header(token)["alg"]
        if not isinstance(key, str) and not _family_matches(header_alg, key):
            raise _refused(
                f"JWT refused: algorithm {header_alg} does not match the signing key", "jwt_alg_mismatch"
            )
        settings = self.settings
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[header_alg],
                audience=settings.audience,
                issuer=settings.issuer,
                leeway=settings.leeway_seconds,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError:
            raise _refused("JWT has expired", "jwt_expired") from None
        except jwt.ImmatureSignatureError:
            raise _refused("JWT is not valid yet (nbf)", "jwt_not_yet_valid") from None
        except jwt.InvalidAudienceError:
            raise _refused("JWT audience is wrong", "jwt_wrong_audience") from None
        except jwt.InvalidIssuerError:
            raise _refused("JWT issuer is wrong", "jwt_wrong_issuer") from None
        except jwt.InvalidSignatureError:
            raise _refused("JWT signature is invalid", "jwt_bad_signature") from None
        except jwt.MissingRequiredClaimError as exc:
            raise _refused(f"JWT lacks the {exc.claim} claim", "jwt_missing_claim") from None
        except jwt.InvalidTokenError:
            raise _refused("invalid JWT") from None
        return claims

    def _principal(self, claims: dict[str, Any]) -> Principal:
        settings = self.settings
        team_name = claims.get(settings.team_claim)
        if not isinstance(team_name, str) or not team_name:
            raise _refused(f"JWT lacks the {settings.team_claim} claim", "jwt_missing_claim")
        team = self._teams(team_name)
        if team is None:
            raise PermissionDenied(f"JWT names an unknown team: {team_name}", code="team_unknown")
        user = claims.get(settings.user_claim)
        user = str(user) if isinstance(user, (str, int)) and user != "" else None
        scopes: tuple[Scope, ...] = (team,) if user is None else (team, Scope("user", user, user))
        return Principal(
            "jwt",
            key_id=f"jwt:{team.id}:{user}" if user is not None else f"jwt:{team.id}",
            name=user,
            team_id=team.id,
            metadata={"user": user} if user is not None else {},
            scopes=scopes,
        )
