"""The `POST /api/chat` front door: chat for apps that want no SDK (shape in services/simple.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

import orjson

from llm_gateway.api.dialect import Dialect, take_fallbacks
from llm_gateway.core.context import Call, Operation, RequestContext
from llm_gateway.core.types import JSON
from llm_gateway.services.simple import simple_answer, simple_stream, to_chat_request


class SimpleChat(Dialect):
    name = "simple.chat"

    def parse(self, ctx: RequestContext, body: JSON, headers: Mapping[str, str]) -> Call:
        request, ctx.fallbacks = take_fallbacks(dict(to_chat_request(body)))
        return Call(Operation.CHAT, request, model=request.get("model"), stream=bool(request.get("stream")))

    def render(self, ctx: RequestContext, call: Call, value: Any) -> bytes:
        return orjson.dumps(simple_answer(value, _provider(ctx)))

    async def render_stream(
        self, ctx: RequestContext, call: Call, chunks: AsyncIterator[Any]
    ) -> AsyncIterator[bytes]:
        async for event in simple_stream(chunks, _provider(ctx)):
            yield b"data: " + orjson.dumps(event) + b"\n\n"


def _provider(ctx: RequestContext) -> str:
    return ctx.route.provider if ctx.route is not None else ""
