"""Chat answers as Responses API answers: a completion as a Response object, a chunk stream
as the typed event stream. Pure: no I/O; ids come from an injectable factory.

    reasoning_content → a `reasoning` item with one summary part
    content / refusal → a `message` item with `output_text` / `refusal` parts
    tool_calls        → `function_call` items, or `custom_tool_call` items for custom tools
    finish_reason     → status: `length` and `content_filter` make it `incomplete`
    usage             → input/output tokens, cached and reasoning token details

`ResponseEvents` is the stream's state machine: `feed(chunk)` and `finish()` return the
events to send, each with the next `sequence_number`; the events of one item always run
added → deltas → done, and items close in the order they opened.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from llm_gateway.core.types import JSON, Usage
from llm_gateway.services.responses_request import ToolIndex

IdFactory = Callable[[str], str]
INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter"}
TERMINAL = frozenset({"response.completed", "response.incomplete", "response.failed"})


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


def base_response(body: JSON, response_id: str, model: str, created_at: int) -> JSON:
    """The Response object before any output: the request's settings echoed, as OpenAI does."""
    reasoning: JSON = body["reasoning"] if isinstance(body.get("reasoning"), dict) else {}
    return {
        "id": response_id,
        "object": "response",
        "created_at": created_at,
        "status": "in_progress",
        "background": False,
        "error": None,
        "incomplete_details": None,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "max_tool_calls": body.get("max_tool_calls"),
        "metadata": body.get("metadata") or {},
        "model": model,
        "output": [],
        "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "previous_response_id": body.get("previous_response_id"),
        "reasoning": {"effort": reasoning.get("effort"), "summary": reasoning.get("summary")},
        "store": body.get("store", True),
        "temperature": body.get("temperature", 1.0),
        "text": body.get("text") or {"format": {"type": "text"}},
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": body.get("tools") or [],
        "top_p": body.get("top_p", 1.0),
        "truncation": body.get("truncation", "disabled"),
        "usage": None,
        "user": body.get("user"),
    }


def response_usage(usage: Any) -> JSON | None:
    """Chat usage in the Responses API's words."""
    if not isinstance(usage, dict):
        return None
    prompt = int(usage.get("prompt_tokens") or 0)
    completion = int(usage.get("completion_tokens") or 0)
    prompt_details = usage.get("prompt_tokens_details") or {}
    completion_details = usage.get("completion_tokens_details") or {}
    return {
        "input_tokens": prompt,
        "input_tokens_details": {
            "cached_tokens": int(prompt_details.get("cached_tokens") or 0),
            "cache_write_tokens": int(prompt_details.get("cache_write_tokens") or 0),
        },
        "output_tokens": completion,
        "output_tokens_details": {"reasoning_tokens": int(completion_details.get("reasoning_tokens") or 0)},
        "total_tokens": int(usage.get("total_tokens") or prompt + completion),
    }


def chat_usage(usage: Any) -> Usage | None:
    """A Response object's usage in the chat `Usage` shape the hooks and pricing read."""
    if not isinstance(usage, dict):
        return None
    prompt = int(usage.get("input_tokens") or 0)
    completion = int(usage.get("output_tokens") or 0)
    result: Usage = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": int(usage.get("total_tokens") or prompt + completion),
    }
    cached = (usage.get("input_tokens_details") or {}).get("cached_tokens")
    if cached:
        result["prompt_tokens_details"] = {"cached_tokens": int(cached)}
    reasoning = (usage.get("output_tokens_details") or {}).get("reasoning_tokens")
    if reasoning:
        result["completion_tokens_details"] = {"reasoning_tokens": int(reasoning)}
    return result


def status_of(finish_reason: Any) -> tuple[str, JSON | None]:
    reason = INCOMPLETE.get(str(finish_reason))
    return ("incomplete", {"reason": reason}) if reason else ("completed", None)


def text_part(text: str) -> JSON:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def refusal_part(refusal: str) -> JSON:
    return {"type": "refusal", "refusal": refusal}


def reasoning_item(item_id: str, text: str) -> JSON:
    return {"id": item_id, "type": "reasoning", "summary": [{"type": "summary_text", "text": text}]}


def message_item(item_id: str, parts: list[JSON], status: str = "completed") -> JSON:
    return {"id": item_id, "type": "message", "status": status, "role": "assistant", "content": parts}


def call_item(item_id: str, call_id: str, chat_name: str, arguments: str, tools: ToolIndex) -> JSON:
    """A chat tool call as the item of the tool the client declared."""
    origin = tools.origin(chat_name)
    item: JSON
    if origin.kind == "custom":
        item = {"id": item_id, "type": "custom_tool_call", "call_id": call_id, "name": origin.name}
        item["input"] = custom_input(arguments)
    else:
        item = {"id": item_id, "type": "function_call", "status": "completed", "call_id": call_id}
        item.update(name=origin.name, arguments=arguments)
    if origin.namespace:
        item["namespace"] = origin.namespace
    return item


def custom_input(arguments: str) -> str:
    """A custom tool's free-form input, out of the one-argument function that carried it."""
    try:
        value = orjson.loads(arguments)
    except orjson.JSONDecodeError:
        return arguments
    if isinstance(value, dict) and isinstance(value.get("input"), str):
        return str(value["input"])
    return arguments


def to_response(completion: Any, base: JSON, tools: ToolIndex, ids: IdFactory = new_id) -> JSON:
    """A chat completion as the Response object that `base` began."""
    choices = completion.get("choices") if isinstance(completion, dict) else None
    choice = choices[0] if isinstance(choices, list) and choices else {}
    message = choice.get("message") or {}
    output: list[JSON] = []
    reasoning = message.get("reasoning_content") or message.get("reasoning")
    if isinstance(reasoning, str) and reasoning:
        output.append(reasoning_item(ids("rs"), reasoning))
    parts: list[JSON] = []
    content = message.get("content")
    if isinstance(content, list):
        content = "".join(str(p.get("text") or "") for p in content if isinstance(p, dict))
    if isinstance(content, str) and content:
        parts.append(text_part(content))
    if isinstance(message.get("refusal"), str) and message["refusal"]:
        parts.append(refusal_part(message["refusal"]))
    if parts:
        output.append(message_item(ids("msg"), parts))
    for call in message.get("tool_calls") or ():
        function = call.get("function") or {}
        arguments = function.get("arguments")
        arguments = arguments if isinstance(arguments, str) else orjson.dumps(arguments or {}).decode()
        call_id = str(call.get("id") or ids("call"))
        output.append(call_item(ids("fc"), call_id, str(function.get("name") or ""), arguments, tools))
    status, incomplete = status_of(choice.get("finish_reason"))
    usage = response_usage(completion.get("usage") if isinstance(completion, dict) else None)
    return {**base, "status": status, "incomplete_details": incomplete, "output": output, "usage": usage}


@dataclass(slots=True)
class _Item:
    """One output item being streamed: where it sits, what it has gathered."""

    index: int
    item: JSON
    kind: str
    text: list[str] = field(default_factory=list)
    parts: list[JSON] = field(default_factory=list)
    part_kind: str | None = None
    chat_name: str = ""


class ResponseEvents:
    """A chat chunk stream as Responses events (module docstring)."""

    def __init__(self, base: JSON, tools: ToolIndex, ids: IdFactory = new_id) -> None:
        self.response: JSON = {**base, "output": []}
        self._tools = tools
        self._ids = ids
        self.sequence = 0
        self._items: list[JSON] = []
        self._reasoning: _Item | None = None
        self._message: _Item | None = None
        self._calls: dict[int, _Item] = {}
        self._finish: Any = None
        self._usage: Any = None
        self._events: list[JSON] = []
        self._started = False

    def feed(self, chunk: Any) -> list[JSON]:
        self._start()
        if isinstance(chunk, dict):
            if chunk.get("usage"):
                self._usage = chunk["usage"]
            for choice in (chunk.get("choices") or ())[:1]:
                self._choice(choice)
        return self._flush()

    def finish(self) -> list[JSON]:
        """The closing events: every open item done, then `response.completed` (or
        `response.incomplete` when the answer was cut short)."""
        self._start()
        self._close_all()
        status, incomplete = status_of(self._finish)
        self.response = {
            **self.response,
            "status": status,
            "incomplete_details": incomplete,
            "output": list(self._items),
            "usage": response_usage(self._usage),
        }
        name = "response.completed" if status == "completed" else "response.incomplete"
        self._emit(name, response=self.response)
        return self._flush()

    def _start(self) -> None:
        if not self._started:
            self._started = True
            self._emit("response.created", response=self.response)
            self._emit("response.in_progress", response=self.response)

    def _choice(self, choice: Any) -> None:
        delta = choice.get("delta") if isinstance(choice, dict) else None
        if isinstance(delta, dict):
            reasoning = delta.get("reasoning_content") or delta.get("reasoning")
            if isinstance(reasoning, str) and reasoning:
                self._reasoning_delta(reasoning)
            if isinstance(delta.get("content"), str) and delta["content"]:
                self._message_delta("output_text", delta["content"])
            if isinstance(delta.get("refusal"), str) and delta["refusal"]:
                self._message_delta("refusal", delta["refusal"])
            for call in delta.get("tool_calls") or ():
                if isinstance(call, dict):
                    self._call_delta(call)
        if isinstance(choice, dict) and choice.get("finish_reason"):
            self._finish = choice["finish_reason"]

    def _emit(self, name: str, **fields: Any) -> None:
        self._events.append({"type": name, "sequence_number": self.sequence, **fields})
        self.sequence += 1

    def _flush(self) -> list[JSON]:
        events, self._events = self._events, []
        return events

    def _open(self, kind: str, item: JSON) -> _Item:
        opened = _Item(len(self._items), item, kind)
        self._items.append(item)
        self._emit("response.output_item.added", output_index=opened.index, item=dict(item))
        return opened

    def _done(self, opened: _Item, item: JSON) -> None:
        self._items[opened.index] = item
        self._emit("response.output_item.done", output_index=opened.index, item=item)

    def _reasoning_delta(self, text: str) -> None:
        if self._reasoning is None:
            self._close_message()
            item = {"id": self._ids("rs"), "type": "reasoning", "summary": []}
            self._reasoning = self._open("reasoning", item)
            part = {"type": "summary_text", "text": ""}
            self._emit(
                "response.reasoning_summary_part.added",
                **self._at(self._reasoning),
                summary_index=0,
                part=part,
            )
        self._reasoning.text.append(text)
        self._emit(
            "response.reasoning_summary_text.delta", **self._at(self._reasoning), summary_index=0, delta=text
        )

    def _close_reasoning(self) -> None:
        opened, self._reasoning = self._reasoning, None
        if opened is None:
            return
        text = "".join(opened.text)
        where = {**self._at(opened), "summary_index": 0}
        self._emit("response.reasoning_summary_text.done", **where, text=text)
        self._emit(
            "response.reasoning_summary_part.done", **where, part={"type": "summary_text", "text": text}
        )
        self._done(opened, reasoning_item(opened.item["id"], text))

    def _message_delta(self, kind: str, text: str) -> None:
        self._close_reasoning()
        if self._message is None:
            self._close_calls()
            self._message = self._open("message", message_item(self._ids("msg"), [], "in_progress"))
        opened = self._message
        if opened.part_kind != kind:
            self._close_part(opened)
            opened.part_kind = kind
            part = text_part("") if kind == "output_text" else refusal_part("")
            self._emit("response.content_part.added", **self._at(opened, part=True), part=part)
        opened.text.append(text)
        extra: JSON = {"logprobs": []} if kind == "output_text" else {}
        delta_name = "response.output_text.delta" if kind == "output_text" else "response.refusal.delta"
        self._emit(delta_name, **self._at(opened, part=True), delta=text, **extra)

    def _close_part(self, opened: _Item) -> None:
        if opened.part_kind is None:
            return
        text = "".join(opened.text)
        where = self._at(opened, part=True)
        if opened.part_kind == "output_text":
            self._emit("response.output_text.done", **where, text=text, logprobs=[])
            part = text_part(text)
        else:
            self._emit("response.refusal.done", **where, refusal=text)
            part = refusal_part(text)
        self._emit("response.content_part.done", **where, part=part)
        opened.parts.append(part)
        opened.text, opened.part_kind = [], None

    def _close_message(self) -> None:
        opened, self._message = self._message, None
        if opened is not None:
            self._close_part(opened)
            self._done(opened, message_item(opened.item["id"], opened.parts))

    def _call_delta(self, call: JSON) -> None:
        index = int(call.get("index") or 0)
        function: JSON = call["function"] if isinstance(call.get("function"), dict) else {}
        opened = self._calls.get(index)
        if opened is None:
            self._close_reasoning()
            self._close_message()
            call_id = str(call.get("id") or self._ids("call"))
            chat_name = str(function.get("name") or "")
            item = call_item(self._ids("fc"), call_id, chat_name, "", self._tools)
            if item["type"] == "function_call":
                item["status"] = "in_progress"
            opened = self._calls[index] = self._open(item["type"], item)
            opened.chat_name = chat_name
        arguments = function.get("arguments")
        if isinstance(arguments, str) and arguments:
            opened.text.append(arguments)
            if opened.kind == "function_call":
                self._emit("response.function_call_arguments.delta", **self._at(opened), delta=arguments)

    def _close_calls(self) -> None:
        for opened in sorted(self._calls.values(), key=lambda o: o.index):
            arguments = "".join(opened.text)
            item = call_item(
                opened.item["id"], opened.item["call_id"], opened.chat_name, arguments, self._tools
            )
            if opened.kind == "custom_tool_call":
                self._emit("response.custom_tool_call_input.delta", **self._at(opened), delta=item["input"])
                self._emit("response.custom_tool_call_input.done", **self._at(opened), input=item["input"])
            else:
                self._emit("response.function_call_arguments.done", **self._at(opened), arguments=arguments)
            self._done(opened, item)
        self._calls.clear()

    def _close_all(self) -> None:
        self._close_reasoning()
        self._close_message()
        self._close_calls()

    @staticmethod
    def _at(opened: _Item, *, part: bool = False) -> JSON:
        where: JSON = {"item_id": opened.item["id"], "output_index": opened.index}
        if part:
            where["content_index"] = len(opened.parts)
        return where


def failure_events(
    snapshot: JSON | None, sequence: int, message: str, code: str | None, status: int
) -> list[JSON]:
    """What a stream that fails after its first event ends with: an `error` event, then
    `response.failed` carrying the response so far with the error in it."""
    error_code = "rate_limit_exceeded" if status == 429 else "server_error"
    events: list[JSON] = [
        {
            "type": "error",
            "sequence_number": sequence,
            "code": code or error_code,
            "message": message,
            "param": None,
        }
    ]
    if snapshot is not None:
        failed = {**snapshot, "status": "failed", "error": {"code": error_code, "message": message}}
        events.append({"type": "response.failed", "sequence_number": sequence + 1, "response": failed})
    return events
