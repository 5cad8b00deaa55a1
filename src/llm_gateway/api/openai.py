"""The OpenAI-compatible front door: `POST /v1/chat/completions` and `GET /v1/models`."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

import orjson
from fastapi import APIRouter
from starlette.responses import Response

from llm_gateway.api.auth import Caller
from llm_gateway.api.body import check_chat_request
from llm_gateway.api.deps import RuntimeDep
from llm_gateway.api.dialect import Dialect, take_fallbacks
from llm_gateway.core.context import Call, Operation, RequestContext
from llm_gateway.core.types import JSON
from llm_gateway.services.access import usable

DONE = b"data: [DONE]\n\n"


class OpenAIChat(Dialect):
    name = "openai.chat"

    def parse(self, ctx: RequestContext, body: JSON, headers: Mapping[str, str]) -> Call:
        check_chat_request(body)
        body, ctx.fallbacks = take_fallbacks(body)
        return Call(Operation.CHAT, body, model=body.get("model"), stream=bool(body.get("stream")))

    async def render_stream(
        self, ctx: RequestContext, call: Call, chunks: AsyncIterator[Any]
    ) -> AsyncIterator[bytes]:
        """OpenAI chat chunks as SSE, then `[DONE]`."""
        async for chunk in chunks:
            yield b"data: " + orjson.dumps(chunk) + b"\n\n"
        yield DONE


router = APIRouter()


@router.get("/v1/models")
async def list_models(runtime: RuntimeDep, caller: Caller) -> Response:
    """The models the caller may use (a virtual key sees only its own and its team's)."""
    data = [
        {"id": name, "object": "model", "created": 0, "owned_by": "llm-gateway"}
        for name in usable(caller, runtime.catalog.names)
    ]
    return Response(content=orjson.dumps({"object": "list", "data": data}), media_type="application/json")
