"""The Responses API front door: `POST /v1/responses` (streamed or not),
`POST /v1/responses/input_tokens`, and `GET` / `DELETE /v1/responses/{id}`.

Streams are typed SSE events (`event: <type>` and its JSON, each with a `sequence_number`).
Errors before the first byte are OpenAI-shaped like every other OpenAI route; a failure
after it ends the stream with an `error` event and then `response.failed` carrying the
response so far, numbered on from the last event sent. docs/responses.md has the details.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from llm_gateway.api.auth import authenticate_request
from llm_gateway.api.deps import RuntimeDep
from llm_gateway.api.dialect import Dialect, sse, take_fallbacks
from llm_gateway.core.context import Call, Operation, RequestContext
from llm_gateway.core.errors import GatewayError
from llm_gateway.core.types import JSON
from llm_gateway.services.responses import OWNER, not_found, owner_of
from llm_gateway.services.responses_events import failure_events
from llm_gateway.services.responses_request import check_request

log = logging.getLogger("llm_gateway.responses")

SNAPSHOTS = frozenset({"response.created", "response.in_progress"})


class OpenAIResponses(Dialect):
    name = "openai.responses"
    operation = Operation.RESPONSES

    def parse(self, ctx: RequestContext, body: JSON, headers: Mapping[str, str]) -> Call:
        body, ctx.fallbacks = take_fallbacks(body)
        check_request(body)
        stream = bool(body.get("stream")) and self.operation is Operation.RESPONSES
        options = {OWNER: owner_of(ctx.principal)}
        return Call(self.operation, body, model=body.get("model"), stream=stream, options=options)

    async def render_stream(
        self, ctx: RequestContext, call: Call, chunks: AsyncIterator[Any]
    ) -> AsyncIterator[bytes]:
        """Each event as `event: <type>` + data; a failure after the first becomes the
        closing `error` and `response.failed` events."""
        snapshot: JSON | None = None
        sequence = 0
        try:
            async for event in chunks:
                kind = str(event.get("type"))
                if kind in SNAPSHOTS and isinstance(event.get("response"), dict):
                    snapshot = event["response"]
                number = event.get("sequence_number")
                sequence = number + 1 if isinstance(number, int) else sequence + 1
                yield sse(orjson.dumps(event), kind)
        except GatewayError as error:
            log.warning(
                "responses stream failed after the first event (request %s): %s",
                ctx.request_id,
                error.message,
            )
            for event in failure_events(snapshot, sequence, error.message, error.code, error.status_code):
                yield sse(orjson.dumps(event), str(event["type"]))

    def error_event(self, error: GatewayError, request_id: str | None) -> bytes:
        """The `error` event alone, for a failure outside the event stream's own handling."""
        event = failure_events(None, 0, error.message, error.code, error.status_code)[0]
        return sse(orjson.dumps(event), "error")


class ResponsesInputTokens(OpenAIResponses):
    name = "openai.responses.input_tokens"
    operation = Operation.RESPONSES_INPUT_TOKENS


router = APIRouter()


@router.get("/v1/responses/{response_id}")
async def retrieve_response(response_id: str, request: Request, runtime: RuntimeDep) -> Response:
    """A stored response, if it is the caller's own; any other id is a 404."""
    owner = owner_of(
        await authenticate_request(request.headers, runtime.master_key, runtime.keys, runtime.jwt)
    )
    record = await runtime.responses.get(owner, response_id, cached=False)
    if record is None:
        raise not_found(response_id)
    return Response(content=orjson.dumps(record.response), media_type="application/json")


@router.delete("/v1/responses/{response_id}")
async def delete_response(response_id: str, request: Request, runtime: RuntimeDep) -> Response:
    owner = owner_of(
        await authenticate_request(request.headers, runtime.master_key, runtime.keys, runtime.jwt)
    )
    if not await runtime.responses.delete(owner, response_id):
        raise not_found(response_id)
    body = {"id": response_id, "object": "response", "deleted": True}
    return Response(content=orjson.dumps(body), media_type="application/json")
