"""JWT verification: each refusal says which, and a valid token becomes its team's caller."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from pydantic import ValidationError

from llm_gateway.api.auth import authenticate_any, authenticate_request
from llm_gateway.core.context import Limits, Principal, Scope
from llm_gateway.core.errors import AuthenticationFailed, PermissionDenied
from llm_gateway.core.governance_config import JWTSettings
from llm_gateway.services.jwtauth import JWTVerifier, looks_like_jwt
from tests.conftest import running
from tests.fakes.jwks import FakeJWKS, SigningKey

ISSUER = "https://idp.example"
AUDIENCE = "llm-gateway"
TEAM = Scope("team", "t1", "research", Limits(rpm=5), ("gpt-4o*",))
TEAMS = {"research": TEAM, "t1": TEAM}


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {"iss": ISSUER, "aud": AUDIENCE, "exp": now + 300, "sub": "alice", "team": "research"}
    return {**base, **overrides}


@pytest.fixture(scope="module")
def rsa_key() -> SigningKey:
    return SigningKey("k1")


def pem_verifier(key: SigningKey, tmp_path: Path, **settings: Any) -> JWTVerifier:
    path = tmp_path / "idp.pem"
    path.write_bytes(key.private.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo))
    config = JWTSettings(issuer=ISSUER, audience=AUDIENCE, public_key_file=str(path), **settings)
    return JWTVerifier(config, TEAMS.get)


def verified(verifier: JWTVerifier, token: str) -> Principal:
    principal = verifier.principal(token)
    assert isinstance(principal, Principal)
    return principal


def refused(verifier: JWTVerifier, token: str) -> AuthenticationFailed:
    with pytest.raises(AuthenticationFailed) as caught:
        verifier.principal(token)
    assert token not in str(caught.value)
    return caught.value


def test_a_valid_token_is_its_teams_caller_with_the_user(rsa_key: SigningKey, tmp_path: Path) -> None:
    principal = verified(pem_verifier(rsa_key, tmp_path), rsa_key.sign(claims()))
    assert principal.kind == "jwt"
    assert principal.team_id == "t1"
    assert principal.metadata == {"user": "alice"}
    assert principal.scopes == (TEAM, Scope("user", "alice", "alice"))


def test_an_es256_token_is_accepted(tmp_path: Path) -> None:
    key = SigningKey("e1", kind="EC")
    assert verified(pem_verifier(key, tmp_path), key.sign(claims())).team_id == "t1"


def test_custom_claims_name_the_team_and_user(rsa_key: SigningKey, tmp_path: Path) -> None:
    verifier = pem_verifier(rsa_key, tmp_path, team_claim="grp", user_claim="email")
    principal = verified(verifier, rsa_key.sign(claims(grp="t1", email="a@x.example")))
    assert principal.team_id == "t1" and principal.metadata == {"user": "a@x.example"}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"exp": int(time.time()) - 120}, "JWT has expired"),
        ({"nbf": int(time.time()) + 600}, "not valid yet"),
        ({"aud": "someone-else"}, "audience is wrong"),
        ({"iss": "https://evil.example"}, "issuer is wrong"),
        ({"team": None}, "lacks the team claim"),
    ],
)
def test_claims_refused(rsa_key: SigningKey, tmp_path: Path, overrides: dict[str, Any], message: str) -> None:
    body = {k: v for k, v in claims(**overrides).items() if v is not None}
    assert message in refused(pem_verifier(rsa_key, tmp_path), rsa_key.sign(body)).message


def test_a_little_clock_skew_is_tolerated(rsa_key: SigningKey, tmp_path: Path) -> None:
    token = rsa_key.sign(claims(exp=int(time.time()) - 5))
    assert verified(pem_verifier(rsa_key, tmp_path), token).team_id == "t1"


def test_a_token_without_exp_is_refused(rsa_key: SigningKey, tmp_path: Path) -> None:
    body = claims()
    del body["exp"]
    assert "lacks the exp claim" in refused(pem_verifier(rsa_key, tmp_path), rsa_key.sign(body)).message


def test_alg_none_is_refused(rsa_key: SigningKey, tmp_path: Path) -> None:
    token = jwt.encode(claims(), None, algorithm="none")
    error = refused(pem_verifier(rsa_key, tmp_path), token)
    assert "alg none" in error.message and error.code == "jwt_alg_none"


def test_a_bad_signature_is_refused(rsa_key: SigningKey, tmp_path: Path) -> None:
    forged = SigningKey("k1").sign(claims())  # same kid, another key
    assert "signature is invalid" in refused(pem_verifier(rsa_key, tmp_path), forged).message


def test_a_tampered_payload_is_refused(rsa_key: SigningKey, tmp_path: Path) -> None:
    header, _, signature = rsa_key.sign(claims()).split(".")
    other = rsa_key.sign(claims(team="other")).split(".")[1]
    assert "signature" in refused(pem_verifier(rsa_key, tmp_path), f"{header}.{other}.{signature}").message


def test_an_hmac_token_signed_with_the_public_key_is_refused(rsa_key: SigningKey, tmp_path: Path) -> None:
    public_pem = rsa_key.private.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    import base64
    import hashlib
    import hmac as hmac_module
    import json

    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    signing_input = f"{part({'alg': 'HS256', 'typ': 'JWT'})}.{part(claims())}"
    mac = hmac_module.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    token = f"{signing_input}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"
    error = refused(pem_verifier(rsa_key, tmp_path), token)
    assert "HS256 is not allowed" in error.message
    # Even with HMAC allowed (a secret configured), an HS token is checked only against the secret.
    verifier = pem_verifier(rsa_key, tmp_path, allowed_algorithms=["RS256", "HS256"], secret="s" * 32)
    assert "signature is invalid" in refused(verifier, token).message


def test_an_hmac_token_with_the_configured_secret_is_accepted(rsa_key: SigningKey, tmp_path: Path) -> None:
    verifier = pem_verifier(rsa_key, tmp_path, allowed_algorithms=["HS256"], secret="s" * 32)
    assert verified(verifier, jwt.encode(claims(), "s" * 32, algorithm="HS256")).team_id == "t1"


def test_an_algorithm_not_matching_the_key_is_refused(rsa_key: SigningKey, tmp_path: Path) -> None:
    ec_key = SigningKey("k1", kind="EC")
    verifier = pem_verifier(rsa_key, tmp_path, allowed_algorithms=["RS256", "ES256"])
    assert "does not match" in refused(verifier, ec_key.sign(claims())).message


def test_an_unknown_team_is_a_403(rsa_key: SigningKey, tmp_path: Path) -> None:
    with pytest.raises(PermissionDenied, match="unknown team: nobody"):
        pem_verifier(rsa_key, tmp_path).principal(rsa_key.sign(claims(team="nobody")))


def test_malformed_is_refused(rsa_key: SigningKey, tmp_path: Path) -> None:
    assert "malformed" in refused(pem_verifier(rsa_key, tmp_path), "abc.def.ghi").message


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({}, "exactly one of jwks_url or public_key_file"),
        ({"jwks_url": "http://x", "public_key_file": "/k.pem"}, "exactly one"),
        ({"jwks_url": "http://x", "allowed_algorithms": ["HS256"]}, "no secret is configured"),
        ({"jwks_url": "http://x", "allowed_algorithms": ["none"]}, "allowed_algorithms"),
        ({"jwks_url": "http://x", "allowed_algorithms": []}, "allowed_algorithms"),
    ],
)
def test_settings_are_validated(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        JWTSettings(issuer=ISSUER, audience=AUDIENCE, **settings)


def test_defaults() -> None:
    settings = JWTSettings(issuer=ISSUER, audience=AUDIENCE, jwks_url="http://x")
    assert settings.allowed_algorithms == ["RS256", "ES256"]


def test_shape() -> None:
    assert looks_like_jwt("aa.bb.cc") and looks_like_jwt("aa.bb.")
    assert not looks_like_jwt("sk-gw-abc") and not looks_like_jwt("a.b") and not looks_like_jwt("a.b.c.d")


async def test_jwks_is_prefetched_and_refreshed_on_an_unknown_kid() -> None:
    old, new = SigningKey("old"), SigningKey("new")
    fake = FakeJWKS(old)
    now = [1000.0]
    with running(fake) as (_, server):
        url = f"{server.url}/.well-known/jwks.json"
        config = JWTSettings(issuer=ISSUER, audience=AUDIENCE, jwks_url=url, jwks_min_refresh_seconds=30)
        verifier = JWTVerifier(config, TEAMS.get, clock=lambda: now[0])
        await verifier.start()
        try:
            assert fake.requests == 1
            assert verified(verifier, old.sign(claims())).team_id == "t1"  # synchronous: cached
            fake.keys = [new]  # the provider rotates
            now[0] += 31
            pending = verifier.principal(new.sign(claims()))
            assert not isinstance(pending, Principal)
            assert (await pending).team_id == "t1"
            assert fake.requests == 2
            # An unknown kid within the refresh interval is refused without another fetch.
            stranger = SigningKey("stranger")
            error = refused(verifier, stranger.sign(claims()))
            assert error.code == "jwt_unknown_key" and fake.requests == 2
            now[0] += 31
            with pytest.raises(AuthenticationFailed, match="kid"):
                await authenticate_request(
                    {"authorization": f"Bearer {stranger.sign(claims())}"}, "master", None, verifier
                )
            assert fake.requests == 3
        finally:
            await verifier.aclose()


async def test_authenticate_leaves_master_and_virtual_keys_synchronous(
    rsa_key: SigningKey, tmp_path: Path
) -> None:
    verifier = pem_verifier(rsa_key, tmp_path)
    master = authenticate_any({"authorization": "Bearer master"}, "master", None, verifier)
    assert isinstance(master, Principal) and master.kind == "master"
    with pytest.raises(AuthenticationFailed, match="invalid API key"):
        authenticate_any({"authorization": "Bearer sk-gw-a.b.c"}, "master", None, verifier)
    token = rsa_key.sign(claims())
    principal = authenticate_any({"authorization": f"Bearer {token}"}, "master", None, verifier)
    assert isinstance(principal, Principal) and principal.kind == "jwt"
    with pytest.raises(AuthenticationFailed, match="invalid API key"):  # JWTs only when configured
        authenticate_any({"authorization": f"Bearer {token}"}, "master", None, None)
