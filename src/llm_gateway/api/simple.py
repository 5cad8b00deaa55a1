"""`POST /api/chat`: chat for apps that want no SDK."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from llm_gateway.api.body import read_json_object
from llm_gateway.api.deps import require_key, runtime
from llm_gateway.api.disconnect import until_disconnected
from llm_gateway.api.served import retries_allowed, served_headers
from llm_gateway.api.sse import EventStreamResponse, encode, error_event
from llm_gateway.core.errors import GatewayError
from llm_gateway.services.simple import simple_answer, simple_stream, to_chat_request

router = APIRouter()


async def simple_chat(request: Request) -> Response:
    """`POST /api/chat`, a plain Starlette route like the other per-request routes."""
    require_key(request)
    chat = runtime(request).chat
    chat_request = to_chat_request(await read_json_object(request))
    retries = retries_allowed(request.headers)
    if chat_request.get("stream"):
        streamed = await until_disconnected(request.receive, chat.stream(chat_request, retries=retries))
        events = simple_stream(streamed.value, streamed.target.provider.name)
        return EventStreamResponse(_encoded(events), headers=served_headers(streamed))
    served = await until_disconnected(request.receive, chat.complete(chat_request, retries=retries))
    answer = simple_answer(served.value, served.target.provider.name)
    return Response(
        content=orjson.dumps(answer), media_type="application/json", headers=served_headers(served)
    )


router.add_route("/api/chat", simple_chat, methods=["POST"])


async def _encoded(events: AsyncIterator[dict[str, Any]]) -> AsyncIterator[bytes]:
    try:
        async for event in events:
            yield encode(event)
    except GatewayError as exc:
        yield error_event(exc)
