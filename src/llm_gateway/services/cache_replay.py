"""Cached answers and streams, both ways: an answer played back as the stream the client
asked for, in its own dialect, and a finished chat stream collected into the completion it
spells out (`ChatCollector`, and `MessageCollector` for Anthropic events, so a stream can
fill the cache).

Entries are whole answers (services/cache.py), so a streamed request that hits gets the
answer cut into the chunks an upstream would send: OpenAI chat chunks
(role and content, tool calls, the finish reason, then usage if the client asked for it)
or Anthropic Messages events (`message_start` ... `message_stop`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson

from llm_gateway.core.types import JSON
from llm_gateway.providers.base import SSEEvent


async def chat_chunks(completion: JSON, include_usage: bool) -> AsyncIterator[JSON]:
    base = {
        "id": completion.get("id", ""),
        "object": "chat.completion.chunk",
        "created": completion.get("created", 0),
        "model": completion.get("model", ""),
    }
    for choice in completion.get("choices") or []:
        message = choice.get("message") or {}
        delta: dict[str, Any] = {"role": "assistant", "content": message.get("content") or ""}
        if message.get("tool_calls"):
            delta["tool_calls"] = [
                {"index": index, **call} for index, call in enumerate(message["tool_calls"])
            ]
        index = choice.get("index", 0)
        yield {**base, "choices": [{"index": index, "delta": delta, "finish_reason": None}]}
        finish = choice.get("finish_reason")
        yield {**base, "choices": [{"index": index, "delta": {}, "finish_reason": finish}]}
    if include_usage and completion.get("usage"):
        yield {**base, "choices": [], "usage": completion["usage"]}


async def message_events(message: JSON) -> AsyncIterator[SSEEvent]:
    usage = message.get("usage") or {}
    start = {**message, "content": [], "stop_reason": None, "stop_sequence": None}
    start["usage"] = {**usage, "output_tokens": 0}
    yield "message_start", orjson.dumps({"type": "message_start", "message": start})
    for index, block in enumerate(message.get("content") or []):
        for name, data in _block_events(index, block):
            yield name, orjson.dumps(data)
    delta = {"stop_reason": message.get("stop_reason"), "stop_sequence": message.get("stop_sequence")}
    out = {"output_tokens": usage.get("output_tokens", 0)}
    yield "message_delta", orjson.dumps({"type": "message_delta", "delta": delta, "usage": out})
    yield "message_stop", orjson.dumps({"type": "message_stop"})


def _block_events(index: int, block: JSON) -> list[tuple[str, JSON]]:
    kind = block.get("type")
    opened: JSON
    deltas: list[JSON]
    if kind == "text":
        opened = {"type": "text", "text": ""}
        deltas = [{"type": "text_delta", "text": block.get("text", "")}]
    elif kind == "tool_use":
        opened = {**block, "input": {}}
        deltas = [{"type": "input_json_delta", "partial_json": orjson.dumps(block.get("input", {})).decode()}]
    elif kind == "thinking":
        opened = {"type": "thinking", "thinking": ""}
        deltas = [{"type": "thinking_delta", "thinking": block.get("thinking", "")}]
        if block.get("signature"):
            deltas.append({"type": "signature_delta", "signature": block["signature"]})
    else:
        opened, deltas = block, []
    events: list[tuple[str, JSON]] = [
        ("content_block_start", {"type": "content_block_start", "index": index, "content_block": opened})
    ]
    for delta in deltas:
        event = {"type": "content_block_delta", "index": index, "delta": delta}
        events.append(("content_block_delta", event))
    events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
    return events


class ChatCollector:
    """A streamed chat answer put back together as the completion it stands for, so a whole
    stream can fill the cache. Anything this cannot reproduce exactly (tool calls, refusals,
    reasoning, logprobs) makes it give up: such a stream is not stored."""

    def __init__(self) -> None:
        self._head: JSON = {}
        self._texts: dict[int, list[str]] = {}
        self._finish: dict[int, str | None] = {}
        self._usage: Any = None
        self.lossy = False

    def feed(self, chunk: JSON) -> None:
        if not self._head:
            self._head = {key: chunk.get(key) for key in ("id", "created", "model", "system_fingerprint")}
        if chunk.get("usage"):
            self._usage = chunk["usage"]
        for choice in chunk.get("choices") or []:
            index = choice.get("index", 0)
            delta = choice.get("delta") or {}
            if choice.get("logprobs") or any(key not in ("role", "content") and delta[key] for key in delta):
                self.lossy = True
            text = delta.get("content")
            self._texts.setdefault(index, [])
            if isinstance(text, str):
                self._texts[index].append(text)
            if choice.get("finish_reason") is not None:
                self._finish[index] = choice["finish_reason"]

    def completion(self, usage: Any) -> JSON | None:
        """The whole answer, or None when it cannot be reproduced or did not finish."""
        if self.lossy or not self._texts or any(self._finish.get(i) is None for i in self._texts):
            return None
        choices = [
            {
                "index": index,
                "message": {"role": "assistant", "content": "".join(parts)},
                "finish_reason": self._finish[index],
            }
            for index, parts in sorted(self._texts.items())
        ]
        head = {key: value for key, value in self._head.items() if value is not None}
        return {**head, "object": "chat.completion", "choices": choices, "usage": self._usage or usage}


class MessageCollector:
    """Anthropic Messages events (`(name, data bytes)`) put back together as the message they
    stand for. Text and `tool_use` blocks are reproduced exactly; any other block (thinking,
    with its signature) or an `error` event makes it give up. Complete only at `message_stop`."""

    def __init__(self) -> None:
        self._message: JSON = {}
        self._blocks: dict[int, JSON] = {}
        self._inputs: dict[int, list[str]] = {}
        self._usage: JSON = {}
        self._stopped = False
        self.lossy = False

    def feed(self, event: SSEEvent) -> None:
        name, raw = event
        data = orjson.loads(raw)
        if name == "message_start":
            self._message = dict(data.get("message") or {})
            self._usage.update(self._message.get("usage") or {})
        elif name == "content_block_start":
            block = dict(data.get("content_block") or {})
            if block.get("type") not in ("text", "tool_use"):
                self.lossy = True
            self._blocks[data.get("index", 0)] = block
        elif name == "content_block_delta":
            self._delta(data.get("index", 0), data.get("delta") or {})
        elif name == "message_delta":
            self._message.update(data.get("delta") or {})
            self._usage.update({k: v for k, v in (data.get("usage") or {}).items() if v is not None})
        elif name == "message_stop":
            self._stopped = True
        elif name == "error":
            self.lossy = True

    def _delta(self, index: int, delta: JSON) -> None:
        block = self._blocks.get(index)
        kind = delta.get("type")
        if block is None:
            self.lossy = True
        elif kind == "text_delta" and block.get("type") == "text":
            block["text"] = block.get("text", "") + str(delta.get("text", ""))
        elif kind == "input_json_delta" and block.get("type") == "tool_use":
            self._inputs.setdefault(index, []).append(str(delta.get("partial_json", "")))
        else:
            self.lossy = True

    def message(self) -> JSON | None:
        """The whole message, or None when it cannot be reproduced or did not finish."""
        if self.lossy or not self._stopped or not self._message:
            return None
        content = []
        for index, block in sorted(self._blocks.items()):
            if block.get("type") == "tool_use":
                joined = "".join(self._inputs.get(index, []))
                try:
                    block = {**block, "input": orjson.loads(joined) if joined else {}}
                except orjson.JSONDecodeError:
                    return None
            content.append(block)
        return {**self._message, "content": content, "usage": self._usage}
