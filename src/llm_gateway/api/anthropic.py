"""The Anthropic-compatible API: `POST /v1/messages` and `POST /v1/messages/count_tokens`.

Clients here are Anthropic SDKs, which parse Anthropic-shaped errors
(``{"type": "error", "error": {"type", "message"}}``), so this router renders every
`GatewayError` on its routes itself, auth failures included (hence `require_key` is called
inside the handlers rather than as a router dependency). Everything else is the gateway's
usual path: the key, the body read once, `MessagesService`, served headers.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from llm_gateway.api.body import read_json_object
from llm_gateway.api.deps import require_key, runtime
from llm_gateway.api.disconnect import until_disconnected
from llm_gateway.api.served import retries_allowed, served_headers
from llm_gateway.api.sse import EventStreamResponse
from llm_gateway.core.errors import GatewayError, InvalidRequest, UpstreamOverloaded
from llm_gateway.core.types import JSON
from llm_gateway.providers.base import SSEEvent
from llm_gateway.services.chat import ChatService
from llm_gateway.services.messages import MessagesRequest, MessagesService

log = logging.getLogger("llm_gateway.anthropic")

router = APIRouter()

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    503: "overloaded_error",
    504: "timeout_error",
    529: "overloaded_error",
}


async def create_message(request: Request) -> Response:
    """`POST /v1/messages`, a plain Starlette route like the other per-request routes (api/deps.py)."""
    chat = runtime(request).chat
    retries = retries_allowed(request.headers)

    async def handle(service: MessagesService, call: MessagesRequest) -> Response:
        stream = call.body.get("stream")
        if stream is not None and not isinstance(stream, bool):
            raise InvalidRequest("stream: Input should be a valid boolean", param="stream")
        if stream:
            streamed = await until_disconnected(request.receive, service.stream(call, retries=retries))
            return EventStreamResponse(_sse(streamed.value), headers=served_headers(streamed))
        served = await until_disconnected(request.receive, service.create(call, retries=retries))
        return _json(served.value, served_headers(served))

    return await _anthropic_shaped(request, chat, handle)


async def count_tokens(request: Request) -> Response:
    chat = runtime(request).chat
    retries = retries_allowed(request.headers)

    async def handle(service: MessagesService, call: MessagesRequest) -> Response:
        served = await until_disconnected(request.receive, service.count_tokens(call, retries=retries))
        return _json(served.value, served_headers(served))

    return await _anthropic_shaped(request, chat, handle)


router.add_route("/v1/messages", create_message, methods=["POST"])
router.add_route("/v1/messages/count_tokens", count_tokens, methods=["POST"])


async def _anthropic_shaped(
    request: Request,
    chat: ChatService,
    handle: Callable[[MessagesService, MessagesRequest], Awaitable[Response]],
) -> Response:
    """Authenticate, read the body, run `handle`; any GatewayError is rendered Anthropic-style."""
    try:
        require_key(request)
        body = await read_json_object(request)
        call = MessagesRequest(body, beta=request.headers.get("anthropic-beta"))
        return await handle(MessagesService(chat), call)
    except GatewayError as exc:
        if exc.status_code >= 500:
            log.warning("%s %s -> %d %s", request.method, request.url.path, exc.status_code, exc.message)
        body = error_body(exc, request.scope.get("state", {}).get("request_id"))
        return Response(
            orjson.dumps(body),
            status_code=exc.status_code,
            headers=exc.headers,
            media_type="application/json",
        )


def error_body(error: GatewayError, request_id: str | None = None) -> JSON:
    status = error.status_code
    kind = ERROR_TYPES.get(status) or ("invalid_request_error" if status < 500 else "api_error")
    if isinstance(error, UpstreamOverloaded):
        kind = "overloaded_error"
    body: JSON = {"type": "error", "error": {"type": kind, "message": error.message}}
    if request_id:
        body["request_id"] = request_id
    return body


def _json(value: JSON, headers: dict[str, str]) -> Response:
    return Response(content=orjson.dumps(value), media_type="application/json", headers=headers)


def frame(name: str, data: bytes) -> bytes:
    lines = b"".join(b"data: " + line + b"\n" for line in data.split(b"\n"))
    return b"event: " + name.encode() + b"\n" + lines + b"\n"


async def _sse(events: AsyncIterator[SSEEvent]) -> AsyncIterator[bytes]:
    """Events as SSE; a failure after the first becomes one Anthropic `error` event."""
    try:
        async for name, data in events:
            yield frame(name, data)
    except GatewayError as exc:
        log.warning("messages stream failed after the first event: %s", exc.message)
        yield frame("error", orjson.dumps(error_body(exc)))
    finally:
        aclose = getattr(events, "aclose", None)
        if aclose is not None:
            await aclose()
