"""What a result cost in tokens, in the lingua franca's `Usage` shape, per operation.

Anthropic-shaped answers (the `/v1/messages` front door) count input tokens apart from
cache reads and writes; here every prompt token is counted once in `prompt_tokens`, with
the cached share in `prompt_tokens_details` (the same mapping as the chat translation).

Streamed chat always asks the upstream for usage (`stream_options.include_usage`), and
`UsageStream` takes the usage-only chunk out again for a client that did not ask, after
recording it in the context; an upstream that sends none gets its usage counted here,
marked `ctx.usage_estimated`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, cast

import orjson

from llm_gateway.core.context import Call, RequestContext
from llm_gateway.core.types import JSON, ChatRequest, Usage, make_usage
from llm_gateway.observability.spans import STREAMED, StreamedAnswer
from llm_gateway.providers.anthropic.response import chat_usage
from llm_gateway.services.responses_events import TERMINAL
from llm_gateway.services.responses_events import chat_usage as response_chat_usage
from llm_gateway.services.tokens import count_output_tokens, count_prompt_tokens


def chat_completion_usage(completion: Any) -> Usage | None:
    usage = completion.get("usage") if isinstance(completion, dict) else None
    return cast(Usage, usage) if isinstance(usage, dict) else None


def embedding_usage(response: Any) -> Usage | None:
    usage = response.get("usage") if isinstance(response, dict) else None
    if not isinstance(usage, dict):
        return None
    prompt = int(usage.get("prompt_tokens") or 0)
    return {"prompt_tokens": prompt, "completion_tokens": 0, "total_tokens": prompt}


def message_usage(message: Any) -> Usage | None:
    usage = message.get("usage") if isinstance(message, dict) else None
    return chat_usage(usage) if isinstance(usage, dict) else None


def no_usage(value: Any) -> Usage | None:
    return None


def _streamed(ctx: RequestContext) -> StreamedAnswer | None:
    """Where a traced stream's id and finish reasons go (services/tracing.py leaves it)."""
    answer = ctx.extras.get(STREAMED)
    return answer if isinstance(answer, StreamedAnswer) else None


class ChunkMeter:
    """Chat chunks: the usage is the last chunk's `usage` (OpenAI sends it once, at the end);
    a traced stream's id and finish reasons are noted from the same chunks."""

    __slots__ = ("_ctx", "_streamed")

    def __init__(self, ctx: RequestContext) -> None:
        self._ctx = ctx
        self._streamed = _streamed(ctx)

    def __call__(self, chunk: Any) -> None:
        if not isinstance(chunk, dict):
            return
        usage = chunk.get("usage")
        if usage:
            self._ctx.usage = usage
        if self._streamed is not None:
            self._streamed.chat_chunk(chunk)


class EventMeter:
    """Anthropic events: input counts in `message_start`, running totals in `message_delta`.
    Only those two events are parsed (which also give a traced stream its id and stop
    reason); the rest pass by their name."""

    __slots__ = ("_ctx", "_streamed", "_usage")

    def __init__(self, ctx: RequestContext) -> None:
        self._ctx = ctx
        self._streamed = _streamed(ctx)
        self._usage: JSON = {}

    def __call__(self, event: Any) -> None:
        name, data = event
        if name == "message_start":
            parsed = _parsed(data)
            message = parsed.get("message")
            usage = message.get("usage") if isinstance(message, dict) else None
        elif name == "message_delta":
            parsed = _parsed(data)
            usage = parsed.get("usage")
        else:
            return
        if self._streamed is not None:
            self._streamed.message_event(name, parsed)
        if isinstance(usage, dict):
            self._usage.update({k: v for k, v in usage.items() if v is not None})
            self._ctx.usage = chat_usage(self._usage)


class ResponseEventMeter:
    """Responses API events, native or translated: the usage is in the terminal event's
    response (`response.completed`, `.incomplete` or `.failed`), as are a traced stream's id
    and finish reason; the rest pass by their type."""

    __slots__ = ("_ctx", "_streamed")

    def __init__(self, ctx: RequestContext) -> None:
        self._ctx = ctx
        self._streamed = _streamed(ctx)

    def __call__(self, event: Any) -> None:
        if isinstance(event, dict) and event.get("type") in TERMINAL:
            response = event.get("response")
            if not isinstance(response, dict):
                return
            usage = response_chat_usage(response.get("usage"))
            if usage is not None:
                self._ctx.usage = usage
            if self._streamed is not None:
                self._streamed.response(response)


def _parsed(data: bytes) -> JSON:
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def asks_for_usage(body: JSON) -> bool:
    """Whether a streamed chat request asked for the final usage chunk itself."""
    options = body.get("stream_options")
    return isinstance(options, dict) and bool(options.get("include_usage"))


def with_stream_usage(request: ChatRequest) -> ChatRequest:
    """The request as sent upstream: with `stream_options.include_usage`, so every
    provider's stream ends with a usage chunk (OpenAI-compatible servers send it; the
    native adapters' translations emit it when this is set)."""
    if asks_for_usage(cast(JSON, request)):
        return request
    options = request.get("stream_options")
    kept = options if isinstance(options, dict) else {}
    return {**request, "stream_options": {**kept, "include_usage": True}}


class UsageStream(AsyncIterator[Any]):
    """A chat stream on its way to the client: records the upstream's usage in the
    context, drops the usage-only chunk (empty `choices`) unless the client asked for it,
    and when the stream ends, fails or is closed without any usage, counts the prompt and
    the streamed text offline and marks the usage estimated.

    It sits below the hook chain's stream, so `on_end` sees the usage either way.
    """

    __slots__ = ("_call", "_chunks", "_ctx", "_done", "_keep_usage", "_model", "_texts")

    def __init__(self, ctx: RequestContext, call: Call, chunks: AsyncIterator[Any], model: str) -> None:
        self._ctx = ctx
        self._call = call
        self._chunks = chunks
        self._model = model
        self._keep_usage = asks_for_usage(call.body)
        self._texts: list[str] = []
        self._done = False

    def __aiter__(self) -> UsageStream:
        return self

    async def __anext__(self) -> Any:
        while True:
            try:
                chunk = await self._chunks.__anext__()
            except BaseException:
                self._finish()
                raise
            if not isinstance(chunk, dict):
                return chunk
            usage = chunk.get("usage")
            if usage:
                self._ctx.usage = usage
                self._ctx.usage_estimated = False
                if not self._keep_usage and not chunk.get("choices"):
                    continue
            elif self._ctx.usage is None:
                self._collect(chunk)
            return chunk

    async def aclose(self) -> None:
        try:
            aclose = getattr(self._chunks, "aclose", None)
            if aclose is not None:
                await aclose()
        finally:
            self._finish()

    def _collect(self, chunk: JSON) -> None:
        for choice in chunk.get("choices") or ():
            delta = choice.get("delta") if isinstance(choice, dict) else None
            if not isinstance(delta, dict):
                continue
            for key in ("content", "reasoning_content", "refusal"):
                if isinstance(delta.get(key), str):
                    self._texts.append(delta[key])
            for call in delta.get("tool_calls") or ():
                function = call.get("function") if isinstance(call, dict) else None
                if isinstance(function, dict):
                    self._texts.extend(str(function.get(k) or "") for k in ("name", "arguments"))

    def _finish(self) -> None:
        """An estimate when the upstream never said (once; never over a reported usage)."""
        if self._done:
            return
        self._done = True
        if self._ctx.usage is not None:
            return
        try:
            prompt = count_prompt_tokens(self._call.operation, self._call.body, self._model)
            output = count_output_tokens(self._texts, self._model)
        except Exception:  # an estimate must never fail the stream's end; no usage, then
            return
        self._ctx.usage = make_usage(prompt, output)
        self._ctx.usage_estimated = True
