"""OpenAI chat chunks as Anthropic stream events, for the `/v1/messages` front door.

The reverse of `stream`: `MessageEvents.feed(chunk)` returns the events a chunk
adds, `finish()` the closing ones. The sequence is what the Messages API sends and what the
`anthropic` SDK's stream helpers accumulate: `message_start`; per content block (text, or
`tool_use` with its arguments as `input_json_delta`s) `content_block_start`, deltas and
`content_block_stop`, one block open at a time; then `message_delta` with the stop reason
and usage, and `message_stop`. A chat stream reports usage only at its end, so
`message_start` carries zero input tokens and `message_delta` the real, cumulative counts.
"""

from __future__ import annotations

from typing import Any

from llm_gateway.core.types import JSON, ChatChunk
from llm_gateway.providers.anthropic.frontdoor import message_usage, stop_reason

Event = tuple[str, JSON]


class MessageEvents:
    def __init__(self, *, message_id: str, model: str) -> None:
        """`message_id` and `model` are used until a chunk brings the upstream's own."""
        self.message_id = message_id
        self.model = model
        self.started = False
        self.finish_reason: str | None = None
        self.usage: Any = None
        self._open: int | None = None  # index of the open content block
        self._open_kind = ""
        self._next = 0
        self._tools: dict[int, int] = {}  # chat tool-call index -> content block index

    def feed(self, chunk: ChatChunk) -> list[Event]:
        events: list[Event] = []
        if not self.started:
            self.message_id = chunk.get("id") or self.message_id
            self.model = chunk.get("model") or self.model
            events.append(self._message_start())
        if chunk.get("usage"):
            self.usage = chunk["usage"]
        for choice in chunk.get("choices") or []:
            if choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            content = delta.get("content")
            if isinstance(content, str) and content:
                events.extend(self._text(content))
            for call in delta.get("tool_calls") or []:
                events.extend(self._tool_call(call))
            self.finish_reason = choice.get("finish_reason") or self.finish_reason
        return events

    def finish(self) -> list[Event]:
        events = [] if self.started else [self._message_start()]
        events.extend(self._close())
        usage = message_usage(self.usage)
        delta = {"stop_reason": stop_reason(self.finish_reason), "stop_sequence": None}
        events.append(("message_delta", {"type": "message_delta", "delta": delta, "usage": usage}))
        events.append(("message_stop", {"type": "message_stop"}))
        return events

    def _message_start(self) -> Event:
        self.started = True
        message: JSON = {
            "id": self.message_id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 0, "output_tokens": 0},
        }
        return "message_start", {"type": "message_start", "message": message}

    def _start(self, kind: str, block: JSON) -> list[Event]:
        events = self._close()
        self._open, self._open_kind = self._next, kind
        self._next += 1
        events.append(
            (
                "content_block_start",
                {"type": "content_block_start", "index": self._open, "content_block": block},
            )
        )
        return events

    def _close(self) -> list[Event]:
        if self._open is None:
            return []
        index, self._open = self._open, None
        return [("content_block_stop", {"type": "content_block_stop", "index": index})]

    def _text(self, text: str) -> list[Event]:
        events = (
            []
            if self._open_kind == "text" and self._open is not None
            else self._start("text", {"type": "text", "text": ""})
        )
        delta = {"type": "text_delta", "text": text}
        events.append(
            ("content_block_delta", {"type": "content_block_delta", "index": self._open, "delta": delta})
        )
        return events

    def _tool_call(self, call: Any) -> list[Event]:
        number = call.get("index", 0)
        function = call.get("function") or {}
        events: list[Event] = []
        if number not in self._tools:
            block: JSON = {
                "type": "tool_use",
                "id": call.get("id") or f"toolu_{self.message_id}_{number}",
                "name": function.get("name") or "",
                "input": {},
            }
            events = self._start("tool", block)
            self._tools[number] = self._next - 1
        arguments = function.get("arguments")
        if arguments:
            delta = {"type": "input_json_delta", "partial_json": arguments}
            index = self._tools[number]
            events.append(
                ("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta})
            )
        return events
