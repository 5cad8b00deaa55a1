"""Output guardrails on a stream, per operation's chunk shape.

Each text stream inside the answer (a choice's content, each tool call's arguments, an
Anthropic content block, a Responses output part) gets its own `StreamScanner`; what a
scanner holds back is sent when its text ends (the chunk with the choice's
`finish_reason`, before a block's `content_block_stop`, before a Responses `.done`
event) or when the stream ends. Whole-text checks (`json_schema`, `http`) see the text
when the stream ends. A block raises `GuardrailBlocked` from the iterator: the endpoint
ends the stream with one error event in the front door's dialect.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Hashable, Sequence
from typing import Any

import orjson

from llm_gateway.core.context import Operation
from llm_gateway.services.guardrails.checks import TextCheck
from llm_gateway.services.guardrails.detectors import merged, redact
from llm_gateway.services.guardrails.outcomes import Outcomes
from llm_gateway.services.guardrails.redactor import StreamScanner
from llm_gateway.services.guardrails.texts import responses_output

EndCheck = Callable[[str], Awaitable[None]]
"""Runs the whole-text checks over the streamed answer's text; raises to block."""


class StreamGuard:
    """The scanners of one stream, by text stream key, and the text kept for end checks."""

    def __init__(
        self, checks: Sequence[TextCheck], hold: int, outcomes: Outcomes, end: EndCheck | None
    ) -> None:
        self._checks = checks
        self._hold = hold
        self._outcomes = outcomes
        self._scanners: dict[Hashable, StreamScanner] = {}
        self._end = end
        self._kept: list[str] = []

    def text(self, key: Hashable, piece: str) -> str:
        if self._end is not None and key in ((0, "content"), "content"):
            self._kept.append(piece)
        if not self._checks:
            return piece
        scanner = self._scanners.get(key)
        if scanner is None:
            scanner = self._scanners[key] = StreamScanner(self._checks, self._hold, self._outcomes)
        return scanner.feed(piece)

    def finish(self, key: Hashable) -> str:
        scanner = self._scanners.pop(key, None)
        return scanner.flush() if scanner is not None else ""

    def tool_keys(self, index: int) -> list[tuple[Any, ...]]:
        """The open scanners of a chat choice's tool calls."""
        return [key for key in self._scanners if isinstance(key, tuple) and key[:2] == (index, "tool")]

    def finish_all(self) -> dict[Hashable, str]:
        return {key: text for key in list(self._scanners) if (text := self.finish(key))}

    def whole(self, text: str) -> str:
        """A text given whole (a `.done` event's): redacted as the scanners would."""
        spans = []
        for check in self._checks:
            found = check.spans(text)
            if found and check.settings.action == "redact":
                spans.extend(found)
        spans.sort(key=lambda span: (span.start, -span.end))
        return redact(text, merged(spans))

    async def end(self) -> None:
        if self._end is not None:
            await self._end("".join(self._kept))


def _set(holder: dict[str, Any], key: str, value: str) -> None:
    holder[key] = value


async def chat_stream(chunks: AsyncIterator[Any], guard: StreamGuard) -> AsyncIterator[Any]:
    async for chunk in chunks:
        if isinstance(chunk, dict) and chunk.get("choices"):
            chunk = {**chunk, "choices": [_chat_choice(choice, guard) for choice in chunk["choices"]]}
        yield chunk
    rest = guard.finish_all()
    await guard.end()
    if rest:
        yield _chat_rest(rest)


def _chat_choice(choice: Any, guard: StreamGuard) -> Any:
    if not isinstance(choice, dict) or not isinstance(choice.get("delta"), dict):
        return choice
    index = choice.get("index", 0)
    delta = dict(choice["delta"])
    for key in ("content", "refusal"):
        if isinstance(delta.get(key), str):
            delta[key] = guard.text((index, key), delta[key])
    calls = delta.get("tool_calls")
    if isinstance(calls, list):
        delta["tool_calls"] = [_chat_tool_call(index, call, guard) for call in calls]
    if choice.get("finish_reason") is not None:
        _flush_choice(index, delta, guard)
    return {**choice, "delta": delta}


def _chat_tool_call(index: int, call: Any, guard: StreamGuard) -> Any:
    function = call.get("function") if isinstance(call, dict) else None
    if not isinstance(function, dict) or not isinstance(function.get("arguments"), str):
        return call
    key = (index, "tool", call.get("index", 0))
    return {**call, "function": {**function, "arguments": guard.text(key, function["arguments"])}}


def _flush_choice(index: int, delta: dict[str, Any], guard: StreamGuard) -> None:
    for field in ("content", "refusal"):
        rest = guard.finish((index, field))
        if rest:
            _set(delta, field, (delta.get(field) or "") + rest)
    for key in guard.tool_keys(index):
        rest = guard.finish(key)
        if rest:
            calls = list(delta.get("tool_calls") or [])
            calls.append({"index": key[2], "function": {"arguments": rest}})
            delta["tool_calls"] = calls


def _chat_rest(rest: dict[Hashable, str]) -> dict[str, Any]:
    """What was still held when a stream ended without a finish chunk, as one last chunk."""
    choices: dict[int, dict[str, Any]] = {}
    for key, text in rest.items():
        assert isinstance(key, tuple)
        delta = choices.setdefault(key[0], {})
        if key[1] == "tool":
            delta.setdefault("tool_calls", []).append({"index": key[2], "function": {"arguments": text}})
        else:
            delta[key[1]] = text
    return {
        "id": "chatcmpl-guardrails",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": "",
        "choices": [{"index": i, "delta": d, "finish_reason": None} for i, d in choices.items()],
    }


async def completions_stream(chunks: AsyncIterator[Any], guard: StreamGuard) -> AsyncIterator[Any]:
    async for chunk in chunks:
        if isinstance(chunk, dict) and chunk.get("choices"):
            choices = []
            for choice in chunk["choices"]:
                if isinstance(choice, dict) and isinstance(choice.get("text"), str):
                    key = (choice.get("index", 0), "content")
                    text = guard.text(key, choice["text"])
                    if choice.get("finish_reason") is not None:
                        text += guard.finish(key)
                    choice = {**choice, "text": text}
                choices.append(choice)
            chunk = {**chunk, "choices": choices}
        yield chunk
    rest = guard.finish_all()
    await guard.end()
    if rest:
        yield {
            "id": "cmpl-guardrails",
            "object": "text_completion",
            "created": 0,
            "model": "",
            "choices": [
                {"text": text, "index": key[0], "logprobs": None, "finish_reason": None}  # type: ignore[index]
                for key, text in rest.items()
            ],
        }


MESSAGE_DELTAS = {"text_delta": "text", "input_json_delta": "partial_json", "thinking_delta": "thinking"}


async def messages_stream(events: AsyncIterator[Any], guard: StreamGuard) -> AsyncIterator[Any]:
    """Anthropic events (`(name, data bytes)`): deltas rewritten, held text sent as one more
    delta before the block's `content_block_stop`."""
    kinds: dict[int, str] = {}
    async for event in events:
        name, data = event
        if name == "content_block_delta":
            parsed = orjson.loads(data)
            delta = parsed.get("delta") or {}
            field = MESSAGE_DELTAS.get(str(delta.get("type")))
            if field is not None and isinstance(delta.get(field), str):
                index = parsed.get("index", 0)
                kinds[index] = delta["type"]
                delta[field] = guard.text("content" if index == 0 else index, delta[field])
                event = (name, orjson.dumps(parsed))
        elif name == "content_block_stop":
            index = orjson.loads(data).get("index", 0)
            rest = guard.finish("content" if index == 0 else index)
            if rest:
                kind = kinds.get(index, "text_delta")
                delta = {"type": kind, MESSAGE_DELTAS[kind]: rest}
                yield (
                    "content_block_delta",
                    orjson.dumps({"type": "content_block_delta", "index": index, "delta": delta}),
                )
        elif name == "message_stop":
            await guard.end()
        yield event


RESPONSE_DELTAS = {
    "response.output_text.delta": ("delta", "response.output_text.done", "text"),
    "response.refusal.delta": ("delta", "response.refusal.done", "refusal"),
    "response.function_call_arguments.delta": ("delta", "response.function_call_arguments.done", "arguments"),
}
RESPONSE_DONE = {done: (delta, field) for delta, (_, done, field) in RESPONSE_DELTAS.items()}


async def responses_stream(events: AsyncIterator[Any], guard: StreamGuard) -> AsyncIterator[Any]:
    """Responses events: deltas rewritten, held text sent as one more delta before the
    `.done` event, and every whole text (`.done`, parts, items, the final response) redacted."""
    async for event in events:
        kind = event.get("type") if isinstance(event, dict) else None
        if kind in RESPONSE_DELTAS and isinstance(event.get("delta"), str):
            event = {**event, "delta": guard.text(_response_key(event), event["delta"])}
        elif kind in RESPONSE_DONE:
            delta_kind, field = RESPONSE_DONE[kind]
            rest = guard.finish(_response_key(event))
            if rest:
                yield {**{k: v for k, v in event.items() if k != field}, "type": delta_kind, "delta": rest}
            if isinstance(event.get(field), str):
                event = {**event, field: guard.whole(event[field])}
        elif isinstance(event, dict):
            event = _whole_texts(event, guard)
            if kind in ("response.completed", "response.incomplete", "response.failed"):
                await guard.end()
        yield event


def _response_key(event: dict[str, Any]) -> Hashable:
    index = (event.get("output_index", 0), event.get("content_index", 0))
    return "content" if index == (0, 0) else index


def _whole_texts(event: dict[str, Any], guard: StreamGuard) -> dict[str, Any]:
    """Texts given whole in parts, items and the final response, redacted alike."""
    if not any(isinstance(event.get(key), dict) for key in ("part", "item", "response")):
        return event
    copied: dict[str, Any] = orjson.loads(orjson.dumps(event))
    for key in ("part", "item", "response"):
        holder = copied.get(key)
        if not isinstance(holder, dict):
            continue
        if key == "response":
            slots = responses_output(holder)
        else:
            slots = responses_output({"output": [holder]})
            for key in ("text", "refusal"):
                if isinstance(holder.get(key), str):
                    holder[key] = guard.whole(holder[key])
        for slot in slots:
            slot.set(guard.whole(slot.get()))
    return copied


STREAMS: dict[Operation, Callable[[AsyncIterator[Any], StreamGuard], AsyncIterator[Any]]] = {
    Operation.CHAT: chat_stream,
    Operation.COMPLETIONS: completions_stream,
    Operation.MESSAGES: messages_stream,
    Operation.RESPONSES: responses_stream,
}
