"""A front door's wire format: how its requests parse, and how results, streams and errors render.

Each front door (OpenAI chat, OpenAI embeddings, the simple `/api/chat`, Anthropic messages
and count_tokens; the Responses API next) is one `Dialect`. The endpoint wrapper owns
everything else (auth, body, context, disconnects, headers), so a dialect is pure
translation: no I/O, no routing. Errors render in the door's own shape, chosen by the
route a request hit, never by sniffing its path.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any, ClassVar

import orjson
from starlette.types import Scope

from llm_gateway.core.context import Call, RequestContext
from llm_gateway.core.errors import GatewayError, InvalidRequest
from llm_gateway.core.types import JSON

FALLBACKS = "fallbacks"
TRUE_VALUES = frozenset({"1", "true", "yes", "on"})


class Dialect:
    name: ClassVar[str]
    """`family.operation`, e.g. `openai.chat`: the context's `dialect`, for logs and metrics."""

    def parse(self, ctx: RequestContext, body: JSON, headers: Mapping[str, str]) -> Call:
        """Check the body and make the call; a malformed request is an `InvalidRequest`.
        Routing wishes found in the body (the client's `fallbacks`) go into `ctx`."""
        raise NotImplementedError

    def parse_http(self, ctx: RequestContext, body: JSON, headers: Mapping[str, str], scope: Scope) -> Call:
        """`parse`, for a door that reads the URL too (Gemini's model and `alt` are in it):
        the endpoint calls this; the default reads the body and headers only."""
        return self.parse(ctx, body, headers)

    def render(self, ctx: RequestContext, call: Call, value: Any) -> bytes:
        """A non-streaming result as the JSON body of a 200."""
        return orjson.dumps(value)

    def render_stream(
        self, ctx: RequestContext, call: Call, chunks: AsyncIterator[Any]
    ) -> AsyncIterator[bytes]:
        """A stream as SSE frames; a `GatewayError` from `chunks` propagates (the endpoint
        turns it into `error_event`)."""
        raise NotImplementedError

    def error_body(self, error: GatewayError, request_id: str | None) -> bytes:
        """An error before the first byte: the body sent with the error's status."""
        return orjson.dumps(error.to_body())

    def error_event(self, error: GatewayError, request_id: str | None) -> bytes:
        """An error after the first byte: one SSE event the door's SDKs raise on."""
        return b"data: " + orjson.dumps(error.to_body()) + b"\n\n"


def take_fallbacks(body: JSON) -> tuple[JSON, list[str] | None]:
    """Take the gateway's own `fallbacks` field out of the body (no upstream knows it) and
    check its shape: a list of model names, tried in order if the model fails."""
    if FALLBACKS not in body:
        return body, None
    names = body[FALLBACKS]
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise InvalidRequest("'fallbacks' must be an array of model names", param=FALLBACKS)
    return {k: v for k, v in body.items() if k != FALLBACKS}, names


def flag(value: str | None) -> bool:
    return value is not None and value.strip().lower() in TRUE_VALUES


def sse(data: bytes, event: str | None = None) -> bytes:
    """One SSE frame; `data` may span lines (each becomes its own `data:` line)."""
    lines = b"".join(b"data: " + line + b"\n" for line in data.split(b"\n"))
    return (b"event: " + event.encode() + b"\n" + lines if event else lines) + b"\n"
