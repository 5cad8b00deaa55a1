"""Request-scoped access to what the lifespan built.

The per-request API routes (chat, messages, embeddings) are plain Starlette routes that call
`runtime(request)` and `require_key(request)` directly: FastAPI's dependency solving cost
about 15% of the gateway's CPU per request in profiles (docs/performance.md). The admin
and health routes use the `Annotated` dependencies below; they are `async def` because
FastAPI runs a plain `def` dependency in a worker thread.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request

from llm_gateway.core.errors import AuthenticationFailed
from llm_gateway.runtime import Runtime
from llm_gateway.services.chat import ChatService
from llm_gateway.services.embeddings import EmbeddingService


def runtime(request: Request) -> Runtime:
    state: Runtime = request.app.state.runtime
    return state


async def _runtime(request: Request) -> Runtime:
    return runtime(request)


RuntimeDep = Annotated[Runtime, Depends(_runtime)]


async def chat_service(request: Request) -> ChatService:
    return runtime(request).chat


ChatServiceDep = Annotated[ChatService, Depends(chat_service)]


async def embedding_service(request: Request) -> EmbeddingService:
    return runtime(request).embeddings


EmbeddingServiceDep = Annotated[EmbeddingService, Depends(embedding_service)]


def presented_key(request: Request) -> str | None:
    """The caller's key: `Authorization: Bearer …` (OpenAI style) or `x-api-key` (Anthropic style)."""
    authorization = request.headers.get("authorization")
    if authorization:
        scheme, _, token = authorization.partition(" ")
        return token.strip() if scheme.lower() == "bearer" else None
    return request.headers.get("x-api-key")


def require_key(request: Request) -> None:
    """Reject the call unless it carries the master key (when one is configured)."""
    master_key = runtime(request).config.master_key
    if master_key:
        check_key(request, master_key.get_secret_value())


def check_key(request: Request, master_key: str) -> None:
    """The presented key must be `master_key`, compared in constant time."""
    key = presented_key(request)
    if key is None:
        raise AuthenticationFailed("missing API key: send it as 'Authorization: Bearer <key>' or 'x-api-key'")
    if not hmac.compare_digest(key.encode(), master_key.encode()):
        raise AuthenticationFailed("invalid API key")


async def _require_key(request: Request) -> None:
    require_key(request)


Authorized = Depends(_require_key)
