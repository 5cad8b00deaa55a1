"""Who is calling: the key a request presents, checked against the master key.

Per-request routes call `authenticate` from the endpoint wrapper; the admin API requires
the master key through `require_master_key`; `/v1/models` uses the `Authorized` dependency.
Virtual keys plug in here: `authenticate` becomes a lookup that returns their principal.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping

from fastapi import Depends, Request

from llm_gateway.core.context import MASTER, OPEN, Principal
from llm_gateway.core.errors import AuthenticationFailed, PermissionDenied


def presented_key(headers: Mapping[str, str]) -> str | None:
    """The caller's key: `Authorization: Bearer …` (OpenAI style) or `x-api-key` (Anthropic style)."""
    authorization = headers.get("authorization")
    if authorization:
        scheme, _, token = authorization.partition(" ")
        return token.strip() if scheme.lower() == "bearer" else None
    return headers.get("x-api-key")


def check_key(headers: Mapping[str, str], master_key: str) -> None:
    """The presented key must be `master_key`, compared in constant time."""
    key = presented_key(headers)
    if key is None:
        raise AuthenticationFailed("missing API key: send it as 'Authorization: Bearer <key>' or 'x-api-key'")
    if not hmac.compare_digest(key.encode(), master_key.encode()):
        raise AuthenticationFailed("invalid API key")


def authenticate(headers: Mapping[str, str], master_key: str | None) -> Principal:
    """The caller of a per-request route: anyone when no master key is configured."""
    if not master_key:
        return OPEN
    check_key(headers, master_key)
    return MASTER


def require_master_key(headers: Mapping[str, str], master_key: str | None) -> None:
    """Only the master key opens the admin API; without one configured, it stays shut."""
    if not master_key:
        raise PermissionDenied("the admin API is disabled: set master_key in the config to use it")
    check_key(headers, master_key)


async def _authorized(request: Request) -> None:
    authenticate(request.headers, request.app.state.runtime.master_key)


Authorized = Depends(_authorized)
