"""Where the text is in each operation's request and answer, as slots that can be rewritten.

A slot is one string inside the body (a message's content, a text part, a tool call's
arguments, a tool result, a string inside an Anthropic `tool_use` input), addressed by its
container and key so a redacting guardrail can put the redacted text back in place.
Images, audio and token-id prompts are not text and are left alone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from llm_gateway.core.context import Operation


@dataclass(frozen=True, slots=True)
class Slot:
    container: dict[str, Any] | list[Any]
    key: Any

    def get(self) -> str:
        value = self.container[self.key]
        return value if isinstance(value, str) else ""

    def set(self, text: str) -> None:
        self.container[self.key] = text


def _string(container: dict[str, Any] | list[Any], key: Any, out: list[Slot]) -> None:
    try:
        value = container[key]
    except (KeyError, IndexError):
        return
    if isinstance(value, str) and value:
        out.append(Slot(container, key))


def _strings_within(value: Any, out: list[Slot]) -> None:
    """Every string inside a JSON value (an Anthropic `tool_use` input)."""
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, str):
                _string(value, key, out)
            else:
                _strings_within(item, out)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            if isinstance(item, str):
                _string(value, index, out)
            else:
                _strings_within(item, out)


def _parts(content: Any, out: list[Slot]) -> None:
    """A `content` list: text parts (chat `text`, Responses `input_text`/`output_text`,
    Anthropic `text`), Anthropic tool uses and tool results (nested content)."""
    if not isinstance(content, list):
        return
    for part in content:
        if not isinstance(part, dict):
            continue
        kind = part.get("type")
        if kind in ("text", "input_text", "output_text", "refusal"):
            _string(part, "text" if kind != "refusal" else "refusal", out)
        elif kind == "tool_use":
            _strings_within(part.get("input"), out)
        elif kind == "tool_result":
            _content(part, out)


def _content(holder: dict[str, Any], out: list[Slot], key: str = "content") -> None:
    value = holder.get(key)
    if isinstance(value, str):
        _string(holder, key, out)
    else:
        _parts(value, out)


def _tool_calls(message: dict[str, Any], out: list[Slot]) -> None:
    for call in message.get("tool_calls") or ():
        function = call.get("function") if isinstance(call, dict) else None
        if isinstance(function, dict):
            _string(function, "arguments", out)


def chat_input(body: dict[str, Any]) -> list[Slot]:
    out: list[Slot] = []
    for message in body.get("messages") or ():
        if isinstance(message, dict):
            _content(message, out)
            _tool_calls(message, out)
    return out


def messages_input(body: dict[str, Any]) -> list[Slot]:
    out: list[Slot] = []
    _content(body, out, "system")
    for message in body.get("messages") or ():
        if isinstance(message, dict):
            _content(message, out)
    return out


def responses_input(body: dict[str, Any]) -> list[Slot]:
    out: list[Slot] = []
    _content(body, out, "instructions")
    items = body.get("input")
    if isinstance(items, str):
        _string(body, "input", out)
        return out
    for item in items or ():
        if not isinstance(item, dict):
            continue
        _content(item, out)
        _string(item, "arguments", out)
        _content(item, out, "output")
    return out


def prompts(body: dict[str, Any], key: str) -> list[Slot]:
    """A legacy prompt or embeddings input: a string or a list of strings (token ids skipped)."""
    out: list[Slot] = []
    value = body.get(key)
    if isinstance(value, str):
        _string(body, key, out)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            if isinstance(item, str):
                _string(value, index, out)
    return out


INPUT: dict[Operation, Callable[[dict[str, Any]], list[Slot]]] = {
    Operation.CHAT: chat_input,
    Operation.MESSAGES: messages_input,
    Operation.COUNT_TOKENS: messages_input,
    Operation.RESPONSES: responses_input,
    Operation.RESPONSES_INPUT_TOKENS: responses_input,
    Operation.COMPLETIONS: lambda body: prompts(body, "prompt"),
    Operation.EMBEDDINGS: lambda body: prompts(body, "input"),
}


def input_slots(operation: Operation, body: dict[str, Any]) -> list[Slot]:
    return INPUT[operation](body)


def chat_output(value: dict[str, Any]) -> list[Slot]:
    out: list[Slot] = []
    for choice in value.get("choices") or ():
        message = choice.get("message") if isinstance(choice, dict) else None
        if isinstance(message, dict):
            _content(message, out)
            _string(message, "refusal", out)
            _tool_calls(message, out)
    return out


def responses_output(value: dict[str, Any]) -> list[Slot]:
    out: list[Slot] = []
    for item in value.get("output") or ():
        if isinstance(item, dict):
            _content(item, out)
            _string(item, "arguments", out)
    _string(value, "output_text", out)
    return out


def completions_output(value: dict[str, Any]) -> list[Slot]:
    out: list[Slot] = []
    for choice in value.get("choices") or ():
        if isinstance(choice, dict):
            _string(choice, "text", out)
    return out


OUTPUT: dict[Operation, Callable[[dict[str, Any]], list[Slot]]] = {
    Operation.CHAT: chat_output,
    Operation.MESSAGES: lambda value: messages_input({"messages": [value]}),
    Operation.RESPONSES: responses_output,
    Operation.COMPLETIONS: completions_output,
}


def output_slots(operation: Operation, value: Any) -> list[Slot]:
    """The answer's text; none for operations whose answer has none (embeddings, counts)."""
    reader = OUTPUT.get(operation)
    return reader(value) if reader is not None and isinstance(value, dict) else []


def output_json_text(operation: Operation, value: Any) -> str | None:
    """The text a structured-output answer's schema applies to: the first choice's message
    content (chat) or the joined output text (Responses)."""
    slots = output_slots(operation, value)
    if operation is Operation.CHAT:
        choices = value.get("choices") if isinstance(value, dict) else None
        message = choices[0].get("message") if choices else None
        content = message.get("content") if isinstance(message, dict) else None
        return content if isinstance(content, str) else None
    texts = [slot.get() for slot in slots if slot.key == "text"]
    return "".join(texts) if texts else None
