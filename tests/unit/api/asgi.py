"""The gateway app driven in-process: `create_app` under its own lifespan, requests through
httpx's ASGI transport (no server, no socket, no subprocess), and what each front door
sends back taken apart (its error shape, its SSE frames)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import httpx2 as httpx
import orjson
from fastapi import FastAPI
from starlette.types import ASGIApp, Message

from llm_gateway.app import create_app
from llm_gateway.core.config import GatewayConfig
from llm_gateway.core.errors import UpstreamConnectionError
from llm_gateway.services.hooks import Answer, Hook
from tests.stubs import chunk, event, mock_config

TEXT = "hello there"
CHAT = {"model": "mock", "messages": [{"role": "user", "content": TEXT}]}
EMBEDDINGS = {"model": "mock", "input": TEXT}
SIMPLE = {"model": "mock", "message": TEXT}
MESSAGES = {"model": "mock", "max_tokens": 16, "messages": [{"role": "user", "content": TEXT}]}
COUNT_TOKENS = {"model": "mock", "messages": [{"role": "user", "content": TEXT}]}

ROUTES: dict[str, dict[str, Any]] = {
    "/v1/chat/completions": CHAT,
    "/v1/embeddings": EMBEDDINGS,
    "/api/chat": SIMPLE,
    "/v1/messages": MESSAGES,
    "/v1/messages/count_tokens": COUNT_TOKENS,
}
"""Every per-request route, with a body it answers 200 to."""
ANTHROPIC = frozenset({"/v1/messages", "/v1/messages/count_tokens"})
DIALECTS = {
    "/v1/chat/completions": "openai.chat",
    "/v1/embeddings": "openai.embeddings",
    "/api/chat": "simple.chat",
    "/v1/messages": "anthropic.messages",
    "/v1/messages/count_tokens": "anthropic.count_tokens",
}
STREAMING: dict[str, dict[str, Any]] = {
    "/v1/chat/completions": {**CHAT, "stream": True, "stream_options": {"include_usage": True}},
    "/api/chat": {**SIMPLE, "stream": True},
    "/v1/messages": {**MESSAGES, "stream": True},
}
"""The routes that stream, with a streaming body."""


@asynccontextmanager
async def running(config: GatewayConfig | None = None, hooks: Sequence[Hook] = ()) -> AsyncIterator[FastAPI]:
    """The app (by default: model `mock` on the mock provider) with its lifespan running."""
    app = create_app(config or mock_config(), hooks=hooks)
    async with app.router.lifespan_context(app):
        yield app


@asynccontextmanager
async def gateway(
    config: GatewayConfig | None = None, hooks: Sequence[Hook] = ()
) -> AsyncIterator[httpx.AsyncClient]:
    """A client of `running(config, hooks)`."""
    async with running(config, hooks) as app:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            yield client


async def leave_after_first_frame(app: ASGIApp, path: str, body: dict[str, Any]) -> list[Message]:
    """POST `body` as a client that goes away while the first stream frame is being sent
    (its socket stuck, then closed); returns what the app sent until then."""
    sending = asyncio.Event()
    sent: list[Message] = []
    request = [{"type": "http.request", "body": orjson.dumps(body), "more_body": False}]

    async def receive() -> Message:
        if request:
            return request.pop()
        await sending.wait()
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)
        if message["type"] == "http.response.body" and message.get("body"):
            sending.set()
            await asyncio.Event().wait()  # until the disconnect cancels the request

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1"), (b"content-type", b"application/json")],
        "client": ("127.0.0.1", 1),
        "server": ("gateway", 80),
    }
    await app(scope, receive, send)
    return sent


def error_of(path: str, response: httpx.Response) -> dict[str, Any]:
    """The error object, checked to be in the shape of `path`'s front door: Anthropic's
    `{"type": "error", "error": {type, message}}` on its routes, OpenAI's `{"error": {...}}`
    everywhere else."""
    body = response.json()
    if path in ANTHROPIC:
        assert body["type"] == "error", body
        assert set(body["error"]) == {"type", "message"}, body
    else:
        assert set(body) == {"error"}, body
        assert set(body["error"]) == {"message", "type", "param", "code"}, body
    error: dict[str, Any] = body["error"]
    return error


def frames(response: httpx.Response) -> list[tuple[str | None, Any]]:
    """An SSE body as (event name, data) pairs; data parsed as JSON unless it is `[DONE]`."""
    assert response.headers["content-type"].startswith("text/event-stream")
    parsed: list[tuple[str | None, Any]] = []
    for frame in response.text.split("\n\n"):
        if not frame:
            continue
        name: str | None = None
        data: list[str] = []
        for line in frame.split("\n"):
            field, _, value = line.partition(": ")
            if field == "event":
                name = value
            else:
                assert field == "data", frame
                data.append(value)
        text = "\n".join(data)
        parsed.append((name, text if text == "[DONE]" else orjson.loads(text)))
    return parsed


CUT = "the upstream went away"


def failing_after_first(path: str) -> Answer:
    """An early answer (a hook's `before`) whose stream fails after its first chunk, with
    chunks of `path`'s operation: an Anthropic event on `/v1/messages`, chat chunks elsewhere."""
    first: Any = (
        event("message_start", {"message": {"model": "mock", "usage": {"input_tokens": 1}}})
        if path in ANTHROPIC
        else chunk("mock", {"role": "assistant", "content": "par"})
    )

    async def chunks() -> AsyncIterator[Any]:
        yield first
        raise UpstreamConnectionError(CUT, provider="mock")

    return Answer(chunks())
