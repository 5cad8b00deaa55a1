"""The Gemini-compatible front door: `POST /v1beta/models/{model}:{method}` for any model.

    generateContent        → chat, rendered as a GenerateContentResponse
    streamGenerateContent  → ?alt=sse: a chat stream, each chunk a `data:` GenerateContentResponse;
                             without it, the whole answer as a one-element JSON array (the
                             array form Gemini streams; no SDK or CLI here uses it)
    countTokens            → counted here (`{"totalTokens"}`), never routed
    embedContent           → embeddings (`{"embedding": {"values"}}`)
    batchEmbedContents     → embeddings (`{"embeddings": [...]}`), what google-genai sends

Served under `/v1beta/` and `/v1/` alike (`PREFIXES`). The model comes from the URL
(`scope["path_params"]`, set by api/routes.py), the key from
`x-goog-api-key` (or `?key=`, moved into that header before anything logs the query).
Errors are Google's: `{"error": {"code", "message", "status"}}` with google.rpc status
names, before the first byte and as a `data:` event mid-stream (which the SDKs raise on).
Translation lives in services/gemini_request.py and services/gemini_response.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlencode

import orjson
from starlette.types import Scope

from llm_gateway.api.dialect import Dialect
from llm_gateway.core.context import Call, Operation, RequestContext
from llm_gateway.core.errors import GatewayError
from llm_gateway.core.types import JSON
from llm_gateway.services.gemini_request import (
    count_request,
    embeddings_request,
    model_name,
    to_chat_request,
)
from llm_gateway.services.gemini_response import GeminiStream, embedding_values, to_generate_response

STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    402: "RESOURCE_EXHAUSTED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    405: "UNIMPLEMENTED",
    408: "DEADLINE_EXCEEDED",
    409: "ABORTED",
    413: "INVALID_ARGUMENT",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
"""HTTP status → google.rpc.Code name, as Google's APIs pair them."""
PREFIXES = ("/v1beta/models/", "/v1/models/")
"""google-genai (Python) calls Gemini's `v1`, the Gemini CLI (`@google/genai`) `v1beta`."""
KEY_HEADER = "x-goog-api-key"
MODEL = "model"
ALT = "alt"
KEY_HEADERS = frozenset({b"authorization", b"x-api-key", b"x-goog-api-key"})


def status_name(code: int) -> str:
    return STATUS_NAMES.get(code) or ("FAILED_PRECONDITION" if code < 500 else "INTERNAL")


def error_json(error: GatewayError) -> JSON:
    code = error.status_code
    return {"error": {"code": code, "message": error.message, "status": status_name(code)}}


def gemini_styled(path: str, headers: Mapping[str, str]) -> bool:
    """Whether a request is the Gemini door's (its errors answer in Google's shape): a
    `/v1beta/` path, or a shared one (`/v1/models`) asked with Google's key header."""
    return path.startswith("/v1beta/") or KEY_HEADER in headers


def split_method(path: str) -> tuple[str, str] | None:
    """`/v1beta/models/{model}:{method}` → (model, method); the last colon splits, as model
    names may hold colons."""
    for prefix in PREFIXES:
        if path.startswith(prefix):
            model, colon, method = path[len(prefix) :].rpartition(":")
            return (model, method) if colon and model else None
    return None


def key_from_query(scope: Scope) -> None:
    """Move a `?key=` into the `x-goog-api-key` header (unless a key header is already
    there) and out of the query string, so no access log or trace ever records it."""
    raw = scope.get("query_string", b"")
    if b"key=" not in raw:
        return
    query = parse_qsl(raw.decode("latin-1"), keep_blank_values=True)
    keys = [value for name, value in query if name == "key"]
    if not keys:
        return
    scope["query_string"] = urlencode([(n, v) for n, v in query if n != "key"]).encode("latin-1")
    headers = list(scope["headers"])
    if not any(name in KEY_HEADERS for name, _ in headers):
        headers.append((KEY_HEADER.encode(), keys[0].encode("latin-1")))
    scope["headers"] = headers


class GeminiDialect(Dialect):
    """What every Gemini route shares: the model from the URL, Google's error shape."""

    operation: ClassVar[Operation]

    def parse_http(self, ctx: RequestContext, body: JSON, headers: Mapping[str, str], scope: Scope) -> Call:
        model = model_name(scope["path_params"][MODEL])
        query = parse_qsl(scope.get("query_string", b"").decode("latin-1"))
        return self.translate(ctx, body, model, (ALT, "sse") in query)

    def translate(self, ctx: RequestContext, body: JSON, model: str, sse: bool) -> Call:
        raise NotImplementedError

    def error_body(self, error: GatewayError, request_id: str | None) -> bytes:
        return orjson.dumps(error_json(error))

    def error_event(self, error: GatewayError, request_id: str | None) -> bytes:
        return b"data: " + orjson.dumps(error_json(error)) + b"\r\n\r\n"


def _thoughts(body: JSON) -> bool:
    config = body.get("generationConfig")
    thinking = config.get("thinkingConfig") if isinstance(config, dict) else None
    return isinstance(thinking, dict) and bool(thinking.get("includeThoughts"))


class GeminiGenerate(GeminiDialect):
    name = "gemini.generate_content"
    streams = False

    def translate(self, ctx: RequestContext, body: JSON, model: str, sse: bool) -> Call:
        stream = self.streams and sse
        chat = to_chat_request(body, model, stream=stream)
        options = {"thoughts": _thoughts(body), "array": self.streams and not sse}
        return Call(Operation.CHAT, chat, model=model, stream=stream, options=options)

    def render(self, ctx: RequestContext, call: Call, value: Any) -> bytes:
        response = to_generate_response(value, call.model or "", thoughts=call.options["thoughts"])
        content = orjson.dumps(response)
        return b"[" + content + b"]" if call.options["array"] else content

    async def render_stream(
        self, ctx: RequestContext, call: Call, chunks: AsyncIterator[Any]
    ) -> AsyncIterator[bytes]:
        """Each partial response as `data: ...` (CRLF-framed, as Google frames them)."""
        machine = GeminiStream(call.model or "", thoughts=call.options["thoughts"])
        async for chunk in chunks:
            for response in machine.feed(chunk):
                yield b"data: " + orjson.dumps(response) + b"\r\n\r\n"
        for response in machine.finish():
            yield b"data: " + orjson.dumps(response) + b"\r\n\r\n"


class GeminiStreamGenerate(GeminiGenerate):
    name = "gemini.stream_generate_content"
    streams = True


class GeminiCountTokens(GeminiDialect):
    name = "gemini.count_tokens"

    def translate(self, ctx: RequestContext, body: JSON, model: str, sse: bool) -> Call:
        return Call(Operation.CHAT_TOKENS, count_request(body, model), model=model)

    def render(self, ctx: RequestContext, call: Call, value: Any) -> bytes:
        return orjson.dumps({"totalTokens": int(value["prompt_tokens"])})


class GeminiEmbed(GeminiDialect):
    name = "gemini.embed_content"

    def translate(self, ctx: RequestContext, body: JSON, model: str, sse: bool) -> Call:
        return Call(Operation.EMBEDDINGS, embeddings_request([body], model), model=model)

    def render(self, ctx: RequestContext, call: Call, value: Any) -> bytes:
        values = embedding_values(value)
        return orjson.dumps({"embedding": values[0] if values else {"values": []}})


class GeminiBatchEmbed(GeminiDialect):
    name = "gemini.batch_embed_contents"

    def translate(self, ctx: RequestContext, body: JSON, model: str, sse: bool) -> Call:
        requests = body.get("requests")
        return Call(
            Operation.EMBEDDINGS,
            embeddings_request(requests if isinstance(requests, list) else [], model),
            model=model,
        )

    def render(self, ctx: RequestContext, call: Call, value: Any) -> bytes:
        return orjson.dumps({"embeddings": embedding_values(value)})


METHODS: dict[str, Dialect] = {
    "generateContent": GeminiGenerate(),
    "streamGenerateContent": GeminiStreamGenerate(),
    "countTokens": GeminiCountTokens(),
    "embedContent": GeminiEmbed(),
    "batchEmbedContents": GeminiBatchEmbed(),
}
"""`{model}:{method}` → its dialect (api/routes.py makes one endpoint of each)."""
