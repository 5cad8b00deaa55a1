"""ConverseStream: binary event-stream messages in, OpenAI chat chunks out.

The body is `application/vnd.amazon.eventstream`: length-prefixed, CRC-checked messages
whose headers say what each one is (`:message-type` event / exception / error,
`:event-type`, `:exception-type`). botocore's `EventStreamBuffer` does the framing;
`decode_event` turns one message into an event or a gateway error, and `BedrockStream`
is the pure state machine from Converse events to chunks.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import orjson
from botocore.eventstream import EventStreamBuffer, ParserError

from llm_gateway.core.errors import ProviderError, UpstreamUnavailable
from llm_gateway.core.types import JSON, ChatChunk, ChunkChoice, Message, ToolCall, Usage
from llm_gateway.providers.bedrock.errors import bedrock_error, error_message
from llm_gateway.providers.bedrock.response import converse_usage, finish_reason
from llm_gateway.providers.transport import malformed, redact, too_large
from llm_gateway.providers.upstream import early_end

PRELUDE = 12
"""A frame's total length, its headers' length and the prelude's CRC: 4 bytes each."""

EXCEPTION_STATUS = {
    "throttlingException": 429,
    "validationException": 400,
    "serviceUnavailableException": 503,
    "internalServerException": 500,
    "modelStreamErrorException": 424,
}


class EventDecoder:
    """Feed raw body bytes as they arrive; get back complete `(event type, payload)` pairs.

    Each frame's declared length is read from its prelude before the frame is held, so a frame
    over `limit` bytes is refused (502) as soon as its first 4 bytes arrive.
    """

    def __init__(self, provider: str, limit: int = 1024 * 1024, secrets: Iterable[str | None] = ()) -> None:
        self._buffer = EventStreamBuffer()
        self._pending = bytearray()
        self._provider = provider
        self._limit = limit
        self._secrets = tuple(secrets)

    def feed(self, data: bytes) -> Iterator[tuple[str, JSON]]:
        pending = self._pending
        pending += data
        while len(pending) >= 4:
            length = int.from_bytes(pending[:4], "big")
            if length > self._limit:
                raise too_large(self._provider, "an event-stream frame", self._limit)
            if length < PRELUDE + 4:
                raise malformed(self._provider, "sent a malformed event stream")
            if len(pending) < length:
                return
            self._buffer.add_data(bytes(pending[:length]))
            del pending[:length]
            try:
                messages = list(self._buffer)
            except ParserError as exc:
                raise malformed(
                    self._provider, f"sent a malformed event stream: {type(exc).__name__}"
                ) from None
            for message in messages:
                yield decode_event(message.headers, message.payload, self._provider, self._secrets)


def decode_event(
    headers: Mapping[str, Any], payload: bytes, provider: str, secrets: Iterable[str | None] = ()
) -> tuple[str, JSON]:
    """One decoded message as (event type, JSON payload); exceptions and errors raise."""
    message_type = headers.get(":message-type")
    if message_type == "event":
        try:
            body = orjson.loads(payload) if payload else {}
        except orjson.JSONDecodeError:
            body = None
        if not isinstance(body, dict):
            raise malformed(provider, "sent a malformed event")
        return str(headers.get(":event-type")), body
    if message_type == "exception":
        exception_type = str(headers.get(":exception-type") or "")
        message = error_message(payload, secrets) or exception_type
        status = EXCEPTION_STATUS.get(exception_type, 500)
        raise stream_error(bedrock_error(exception_type, status, message, provider=provider), provider)
    code, text = headers.get(":error-code", "error"), headers.get(":error-message", "")
    text = redact(str(text), secrets)[:500]
    raise UpstreamUnavailable(
        f"upstream provider {provider!r} stream error {redact(str(code), secrets)[:64]}: {text}",
        provider=provider,
    )


def stream_error(error: ProviderError, provider: str) -> ProviderError:
    """Name the stream in the message: the client may already hold part of an answer."""
    error.message = f"{error.message} (upstream provider {provider!r}, during the stream)"
    return error


class BedrockStream:
    """Converse stream events → OpenAI chunks, one `feed` at a time, no I/O.

    Text deltas become `content`, tool-use blocks become `tool_calls` entries numbered in
    order of appearance (their arguments streamed as the JSON text Bedrock sends),
    `messageStop` becomes the finish chunk and `metadata` the usage chunk (when asked for).
    """

    def __init__(self, chunk_id: str, model: str, created: int, *, include_usage: bool) -> None:
        self._id, self._model, self._created = chunk_id, model, created
        self._include_usage = include_usage
        self._tools: dict[int, int] = {}
        self.stopped = False
        self.usage: Usage | None = None

    def feed(self, event: str, payload: JSON) -> list[ChatChunk]:
        if event == "messageStart":
            return [self._chunk({"role": "assistant", "content": ""})]
        if event == "contentBlockStart":
            tool = (payload.get("start") or {}).get("toolUse")
            return [self._tool_start(int(payload.get("contentBlockIndex", 0)), tool)] if tool else []
        if event == "contentBlockDelta":
            return self._delta(int(payload.get("contentBlockIndex", 0)), payload.get("delta") or {})
        if event == "messageStop":
            self.stopped = True
            return [self._chunk({}, finish_reason(payload.get("stopReason")))]
        if event == "metadata" and payload.get("usage"):
            self.usage = converse_usage(payload["usage"])
            if self._include_usage:
                chunk = self._chunk({})
                chunk["choices"], chunk["usage"] = [], self.usage
                return [chunk]
        return []

    def finish(self, provider: str) -> None:
        """The upstream body ended: without `messageStop` the answer is incomplete."""
        if not self.stopped:
            raise early_end(provider)

    def _tool_start(self, block: int, tool: JSON) -> ChatChunk:
        index = self._tools.setdefault(block, len(self._tools))
        call: ToolCall = {
            "index": index,
            "id": str(tool.get("toolUseId")),
            "type": "function",
            "function": {"name": str(tool.get("name")), "arguments": ""},
        }
        return self._chunk({"tool_calls": [call]})

    def _delta(self, block: int, delta: JSON) -> list[ChatChunk]:
        if "text" in delta:
            return [self._chunk({"content": delta["text"]})]
        if "toolUse" in delta:
            index = self._tools.setdefault(block, len(self._tools))
            arguments = str(delta["toolUse"].get("input") or "")
            return [self._chunk({"tool_calls": [{"index": index, "function": {"arguments": arguments}}]})]
        reasoning = (delta.get("reasoningContent") or {}).get("text")
        if reasoning:
            return [self._chunk({"reasoning_content": reasoning})]  # type: ignore[typeddict-unknown-key]
        return []

    def _chunk(self, delta: Message, finish: str | None = None) -> ChatChunk:
        choice: ChunkChoice = {"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}
        return {
            "id": self._id,
            "object": "chat.completion.chunk",
            "created": self._created,
            "model": self._model,
            "choices": [choice],
        }
