"""The Anthropic-compatible front door: `POST /v1/messages` and `POST /v1/messages/count_tokens`.

Clients here are Anthropic SDKs, which parse Anthropic-shaped errors
(``{"type": "error", "error": {"type", "message"}}``), before the first byte and as an
`error` event mid-stream; every error on these routes renders that way, auth failures and
size limits included. An error whose code is one the SDKs act on (`DETAIL_CODES`) carries
it as `error.details.error_code`, as Anthropic's own errors do.

Routes shared with OpenAI clients (`GET /v1/models`, unknown paths) answer in this shape
when the request looks Anthropic-styled (`anthropic_styled`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

import orjson

from llm_gateway.api.dialect import Dialect, sse, take_fallbacks
from llm_gateway.core.context import Call, Operation, RequestContext
from llm_gateway.core.errors import GatewayError, InvalidRequest
from llm_gateway.core.types import JSON

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


DETAIL_CODES = frozenset({"thread_unsupported_request"})
"""Error codes rendered as `error.details.error_code`: the SDKs pick their error class and
their fallback from it (the thread helpers resend without `thread`)."""
STYLE_HEADERS = ("anthropic-version", "x-api-key")
EPOCH = "1970-01-01T00:00:00Z"


def anthropic_styled(headers: Mapping[str, str]) -> bool:
    """Whether a request on a shared route comes from an Anthropic client: the Anthropic SDKs
    always send `anthropic-version`, and their key as `x-api-key`; OpenAI's send neither."""
    return any(headers.get(name) for name in STYLE_HEADERS)


def model_object(model_id: str, display_name: str | None = None) -> JSON:
    """One entry of Anthropic's models API (`created_at`: the gateway has no release dates)."""
    return {"type": "model", "id": model_id, "display_name": display_name or model_id, "created_at": EPOCH}


def model_page(models: list[JSON], limit: int, after_id: str | None, before_id: str | None) -> JSON:
    """A page of Anthropic's `GET /v1/models`: `limit` entries after `after_id` (or before
    `before_id`), with `has_more`, `first_id` and `last_id`, as the SDKs' pagers read it."""
    ids = [model["id"] for model in models]
    start, end = 0, len(models)
    if after_id is not None:
        start = ids.index(after_id) + 1 if after_id in ids else len(models)
        end = min(end, start + limit)
    elif before_id is not None:
        end = ids.index(before_id) if before_id in ids else 0
        start = max(0, end - limit)
    else:
        end = min(end, limit)
    page = models[start:end]
    has_more = start > 0 if before_id is not None and after_id is None else end < len(models)
    return {
        "data": page,
        "has_more": has_more,
        "first_id": page[0]["id"] if page else None,
        "last_id": page[-1]["id"] if page else None,
    }


def error_json(error: GatewayError, request_id: str | None = None) -> JSON:
    status = error.status_code
    kind = ERROR_TYPES.get(status) or ("invalid_request_error" if status < 500 else "api_error")
    if error.error_type == "overloaded_error":
        kind = "overloaded_error"
    detail: JSON = {"type": kind, "message": error.message}
    if error.code in DETAIL_CODES:
        detail["details"] = {"error_code": error.code}
    body: JSON = {"type": "error", "error": detail}
    if request_id:
        body["request_id"] = request_id
    return body


OPTION_HEADERS = (("beta", "anthropic-beta"), ("version", "anthropic-version"))
"""The client's headers a native pass-through forwards (`Call.options` keys)."""


class AnthropicDialect(Dialect):
    """What both Anthropic routes share: the body, the beta header, the error shape."""

    operation: Operation

    def parse(self, ctx: RequestContext, body: JSON, headers: Mapping[str, str]) -> Call:
        body, ctx.fallbacks = take_fallbacks(body)
        model = body.get("model")
        if model is not None and not isinstance(model, str):
            raise InvalidRequest("model: Input should be a valid string", param="model")
        stream = body.get("stream")
        if stream is not None and not isinstance(stream, bool):
            raise InvalidRequest("stream: Input should be a valid boolean", param="stream")
        options = {key: headers[header] for key, header in OPTION_HEADERS if headers.get(header)}
        return Call(self.operation, body, model=model, stream=self._streams(body), options=options)

    def _streams(self, body: JSON) -> bool:
        return False

    def error_body(self, error: GatewayError, request_id: str | None) -> bytes:
        return orjson.dumps(error_json(error, request_id))

    def error_event(self, error: GatewayError, request_id: str | None) -> bytes:
        return sse(orjson.dumps(error_json(error)), "error")


class AnthropicMessages(AnthropicDialect):
    name = "anthropic.messages"
    operation = Operation.MESSAGES

    def _streams(self, body: JSON) -> bool:
        return bool(body.get("stream"))

    async def render_stream(
        self, ctx: RequestContext, call: Call, chunks: AsyncIterator[Any]
    ) -> AsyncIterator[bytes]:
        """Anthropic events (name, data) as SSE, as the upstream framed them or we translated them."""
        async for name, data in chunks:
            yield sse(data, name)


class AnthropicCountTokens(AnthropicDialect):
    name = "anthropic.count_tokens"
    operation = Operation.COUNT_TOKENS
