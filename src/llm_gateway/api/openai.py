"""The OpenAI-compatible API: /v1/chat/completions and /v1/models."""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from llm_gateway.api.body import check_chat_request, read_json_object
from llm_gateway.api.deps import Authorized, RuntimeDep, require_key, runtime
from llm_gateway.api.disconnect import until_disconnected
from llm_gateway.api.served import retries_allowed, served_headers
from llm_gateway.api.sse import EventStreamResponse, openai_events
from llm_gateway.core.types import ChatRequest

router = APIRouter()


async def chat_completions(request: Request) -> Response:
    """`POST /v1/chat/completions`, a plain Starlette route: see api/deps.py for why."""
    require_key(request)
    chat = runtime(request).chat
    body = await read_json_object(request)
    check_chat_request(body)
    chat_request: ChatRequest = body  # type: ignore[assignment]
    retries = retries_allowed(request.headers)
    if body.get("stream"):
        streamed = await until_disconnected(request.receive, chat.stream(chat_request, retries=retries))
        return EventStreamResponse(openai_events(streamed.value), headers=served_headers(streamed))
    served = await until_disconnected(request.receive, chat.complete(chat_request, retries=retries))
    return Response(
        content=orjson.dumps(served.value), media_type="application/json", headers=served_headers(served)
    )


router.add_route("/v1/chat/completions", chat_completions, methods=["POST"])


@router.get("/v1/models", dependencies=[Authorized])
async def list_models(runtime: RuntimeDep) -> Response:
    created = 0
    data = [
        {"id": name, "object": "model", "created": created, "owned_by": "llm-gateway"}
        for name in runtime.catalog.names
    ]
    return Response(content=orjson.dumps({"object": "list", "data": data}), media_type="application/json")
