"""The Anthropic-compatible front door: `POST /v1/messages` and `POST /v1/messages/count_tokens`.

Clients here are Anthropic SDKs, which parse Anthropic-shaped errors
(``{"type": "error", "error": {"type", "message"}}``), before the first byte and as an
`error` event mid-stream; every error on these routes renders that way, auth failures and
size limits included.
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


def error_json(error: GatewayError, request_id: str | None = None) -> JSON:
    status = error.status_code
    kind = ERROR_TYPES.get(status) or ("invalid_request_error" if status < 500 else "api_error")
    if error.error_type == "overloaded_error":
        kind = "overloaded_error"
    body: JSON = {"type": "error", "error": {"type": kind, "message": error.message}}
    if request_id:
        body["request_id"] = request_id
    return body


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
        options = {"beta": beta} if (beta := headers.get("anthropic-beta")) else {}
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
