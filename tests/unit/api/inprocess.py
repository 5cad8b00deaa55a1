"""The gateway app in this process, served through httpx's ASGI transport: the lifespan's
runtime built by hand (the transport does not run lifespans), the offline `mock` provider."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx2 as httpx

from llm_gateway.app import create_app
from llm_gateway.core.loader import build_config
from llm_gateway.providers.registry import settings_model
from llm_gateway.runtime import Runtime

MOCK: dict[str, Any] = {
    "providers": {"mock": {"type": "mock"}},
    "models": {"mock": {"deployments": [{"provider": "mock"}]}},
}
HI = [{"role": "user", "content": "hi"}]
ROUTES: dict[str, dict[str, Any]] = {
    "/v1/chat/completions": {"model": "mock", "messages": HI},
    "/v1/embeddings": {"model": "mock", "input": "hi"},
    "/api/chat": {"model": "mock", "message": "hi"},
    "/v1/messages": {"model": "mock", "max_tokens": 5, "messages": HI},
    "/v1/messages/count_tokens": {"model": "mock", "messages": HI},
}
"""Every per-request route and a body it answers 200."""
ANTHROPIC = ("/v1/messages", "/v1/messages/count_tokens")


@asynccontextmanager
async def gateway(**extra: Any) -> AsyncIterator[httpx.AsyncClient]:
    """A client for the app built from the mock config plus `extra` top-level keys."""
    config = build_config({**MOCK, **extra}, settings_model, "<test>", {})
    app = create_app(config)
    runtime = Runtime.build(config)
    await runtime.start()
    app.state.runtime = runtime
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as client:
            yield client
    finally:
        await runtime.aclose()


def error_of(response: httpx.Response, path: str) -> dict[str, Any]:
    """The error object of a JSON error body in the route's dialect (Anthropic's on its doors)."""
    body = response.json()
    if path in ANTHROPIC:
        assert body["type"] == "error", body
    error: dict[str, Any] = body["error"]
    return error
