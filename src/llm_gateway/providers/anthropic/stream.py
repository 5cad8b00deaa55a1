"""Anthropic's streaming events as OpenAI chat chunks: a small pure state machine.

The Messages stream is `message_start`, then per content block `content_block_start`,
`content_block_delta`* and `content_block_stop`, then `message_delta` (stop reason, final
output usage) and `message_stop`, with `ping`s anywhere and an `error` event if the
upstream fails after its 200. `AnthropicStream.feed` turns each event into the chunks an
OpenAI client expects: a first role chunk, content and reasoning deltas, tool calls as an
id+name chunk followed by argument deltas (numbered by call, not by block), a chunk with
the finish reason, and, when the client asked `stream_options.include_usage`, a last chunk
with empty `choices` and the usage. Unknown event and block types are skipped, as the
API's versioning policy asks of clients.
"""

from __future__ import annotations

from typing import Any, cast

from llm_gateway.core.types import JSON, ChatChunk, Message, ToolCall, ToolCallFunction
from llm_gateway.providers.anthropic.errors import stream_error
from llm_gateway.providers.anthropic.response import chat_usage, finish_reason

_TEXT = "text"
_JSON = "json"
_THINKING = "thinking"


class AnthropicStream:
    """Feed it (event name, parsed data) pairs in order; it returns the chunks for each."""

    def __init__(
        self, *, created: int, include_usage: bool, provider: str = "anthropic", json_tool: str | None = None
    ) -> None:
        self.created = created
        self.include_usage = include_usage
        self.provider = provider
        self.json_tool = json_tool
        self.id = ""
        self.model = ""
        self.usage: JSON = {}
        self.done = False
        self._blocks: dict[int, str | int] = {}  # block index -> kind, or the tool call number
        self._calls = 0
        self._finished = False

    def feed(self, event: str | None, data: Any) -> list[ChatChunk]:
        kind = event or (data.get("type") if isinstance(data, dict) else None)
        if kind == "error":
            raise stream_error(data, provider=self.provider)
        handler = _HANDLERS.get(str(kind))
        if handler is None or not isinstance(data, dict):
            return []
        return handler(self, data)

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> ChatChunk:
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [
                {"index": 0, "delta": cast(Message, delta), "finish_reason": finish, "logprobs": None}
            ],
        }

    def _message_start(self, data: JSON) -> list[ChatChunk]:
        message = data.get("message") or {}
        self.id = str(message.get("id", ""))
        self.model = str(message.get("model", ""))
        self.usage = dict(message.get("usage") or {})
        return [self._chunk({"role": "assistant", "content": ""})]

    def _block_start(self, data: JSON) -> list[ChatChunk]:
        index, block = data.get("index", 0), data.get("content_block") or {}
        kind = block.get("type")
        if kind == "text":
            self._blocks[index] = _TEXT
            return self._text(block.get("text"))
        if kind == "thinking":
            self._blocks[index] = _THINKING
            return self._reasoning(block.get("thinking"))
        if kind == "tool_use" and self.json_tool is not None and block.get("name") == self.json_tool:
            self._blocks[index] = _JSON
            return []
        if kind == "tool_use":
            number = self._calls
            self._calls += 1
            self._blocks[index] = number
            function: ToolCallFunction = {"name": str(block.get("name")), "arguments": ""}
            call: ToolCall = {
                "index": number,
                "id": str(block.get("id")),
                "type": "function",
                "function": function,
            }
            return [self._chunk({"tool_calls": [call]})]
        return []

    def _block_delta(self, data: JSON) -> list[ChatChunk]:
        block = self._blocks.get(data.get("index", 0))
        delta = data.get("delta") or {}
        kind = delta.get("type")
        if kind == "text_delta" and block == _TEXT:
            return self._text(delta.get("text"))
        if kind == "thinking_delta" and block == _THINKING:
            return self._reasoning(delta.get("thinking"))
        if kind == "input_json_delta" and block == _JSON:
            return self._text(delta.get("partial_json"))
        if kind == "input_json_delta" and isinstance(block, int) and delta.get("partial_json"):
            call: ToolCall = {"index": block, "function": {"arguments": str(delta["partial_json"])}}
            return [self._chunk({"tool_calls": [call]})]
        return []

    def _text(self, text: Any) -> list[ChatChunk]:
        return [self._chunk({"content": str(text)})] if text else []

    def _reasoning(self, text: Any) -> list[ChatChunk]:
        return [self._chunk({"reasoning_content": str(text)})] if text else []

    def _message_delta(self, data: JSON) -> list[ChatChunk]:
        # message_delta usage counts are cumulative: they replace, never add.
        self.usage.update({k: v for k, v in (data.get("usage") or {}).items() if v is not None})
        stop_reason = (data.get("delta") or {}).get("stop_reason")
        if stop_reason is None or self._finished:
            return []
        self._finished = True
        return [self._chunk({}, finish_reason(stop_reason, tool_calls=self._calls > 0))]

    def _message_stop(self, data: JSON) -> list[ChatChunk]:
        self.done = True
        chunks = [] if self._finished else [self._chunk({}, "stop")]
        self._finished = True
        if self.include_usage:
            chunks.append({**self._chunk({}), "choices": [], "usage": chat_usage(self.usage)})
        return chunks


_HANDLERS = {
    "message_start": AnthropicStream._message_start,
    "content_block_start": AnthropicStream._block_start,
    "content_block_delta": AnthropicStream._block_delta,
    "message_delta": AnthropicStream._message_delta,
    "message_stop": AnthropicStream._message_stop,
}
