"""Who is calling: the key a request presents, as the master key or a virtual key.

Per-request routes call `authenticate` from the endpoint wrapper; the admin API requires
the master key through `require_master_key`; `/v1/models` and `/v1/me` take the caller
through the `Caller` dependency. A virtual key is looked up in the in-memory index
(`services/keyindex.py`): one hash and one dict lookup, no database round trip. With
`auth.jwt` configured, `authenticate_any` accepts an identity provider's JWT as well
(`services/jwtauth.py`).
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Mapping
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request

from llm_gateway.core.context import MASTER, OPEN, Principal
from llm_gateway.core.errors import AuthenticationFailed, PermissionDenied
from llm_gateway.services.keyindex import KeyIndex
from llm_gateway.store.hashing import PREFIX

if TYPE_CHECKING:
    from llm_gateway.services.jwtauth import JWTVerifier


def presented_key(headers: Mapping[str, str]) -> str | None:
    """The caller's key: `Authorization: Bearer …` (OpenAI style), `x-api-key` (Anthropic
    style) or `x-goog-api-key` (Gemini style; the Gemini routes move a `?key=` there)."""
    authorization = headers.get("authorization")
    if authorization:
        scheme, _, token = authorization.partition(" ")
        return token.strip() if scheme.lower() == "bearer" else None
    return headers.get("x-api-key") or headers.get("x-goog-api-key")


def _required(headers: Mapping[str, str]) -> str:
    key = presented_key(headers)
    if key is None:
        raise AuthenticationFailed(
            "missing API key: send it as 'Authorization: Bearer <key>', 'x-api-key' or 'x-goog-api-key'"
        )
    return key


def _is_master(key: str, master_key: str) -> bool:
    return hmac.compare_digest(key.encode("utf-8", "surrogatepass"), master_key.encode())


def check_key(headers: Mapping[str, str], master_key: str) -> None:
    """The presented key must be `master_key`, compared in constant time."""
    if not _is_master(_required(headers), master_key):
        raise AuthenticationFailed("invalid API key")


def authenticate(
    headers: Mapping[str, str], master_key: str | None, keys: KeyIndex | None = None
) -> Principal | Awaitable[Principal]:
    """The caller of a per-request route: anyone when no master key is configured; else the
    master key, or a virtual key in `keys` (a 401 says whether it is unknown, revoked,
    blocked, expired or a rotated-out secret, and never echoes what was presented)."""
    if not master_key:
        return OPEN
    key = _required(headers)
    if _is_master(key, master_key):
        return MASTER
    if keys is not None and key.startswith(PREFIX):
        return keys.lookup(key)  # an awaitable only for a secret this instance does not know
    raise AuthenticationFailed("invalid API key")


def authenticate_any(
    headers: Mapping[str, str],
    master_key: str | None,
    keys: KeyIndex | None = None,
    jwt: JWTVerifier | None = None,
) -> Principal | Awaitable[Principal]:
    """`authenticate`, and with `auth.jwt` configured a JWT as well (`services/jwtauth.py`).
    The master-key and virtual-key paths stay synchronous; only a JWT whose signing key
    must first be fetched returns an awaitable (callers: `await` it when it is not a
    `Principal`)."""
    if jwt is not None and master_key:
        token = _required(headers)
        if not token.startswith(PREFIX) and jwt.looks_like(token) and not _is_master(token, master_key):
            return jwt.principal(token)
    return authenticate(headers, master_key, keys)


async def authenticate_request(
    headers: Mapping[str, str],
    master_key: str | None,
    keys: KeyIndex | None = None,
    jwt: JWTVerifier | None = None,
) -> Principal:
    """`authenticate_any`, awaited when it has to be."""
    principal = authenticate_any(headers, master_key, keys, jwt)
    return principal if isinstance(principal, Principal) else await principal


def require_master_key(headers: Mapping[str, str], master_key: str | None) -> None:
    """Only the master key opens the admin API; without one configured, it stays shut."""
    if not master_key:
        raise PermissionDenied("the admin API is disabled: set master_key in the config to use it")
    check_key(headers, master_key)


async def _caller(request: Request) -> Principal:
    runtime = request.app.state.runtime
    return await authenticate_request(request.headers, runtime.master_key, runtime.keys, runtime.jwt)


Caller = Annotated[Principal, Depends(_caller)]
"""The authenticated caller of a FastAPI route (`/v1/models`, `/v1/me`)."""
