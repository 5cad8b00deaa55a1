"""An Anthropic Message as an OpenAI chat completion: pure functions, shared with the stream.

Text blocks join into `content`; `tool_use` blocks become `tool_calls` (arguments as JSON
text); `thinking` text becomes `reasoning_content`, the field OpenAI-compatible servers use
for it. Blocks with no chat equivalent (redacted thinking, server tool results) are left
out, as documented. Usage counts every input token, cached or not, as `prompt_tokens`.
"""

from __future__ import annotations

from typing import Any, cast

import orjson

from llm_gateway.core.types import JSON, ChatCompletion, Message, ToolCall, ToolCallFunction, Usage

FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


def finish_reason(stop_reason: str | None, *, tool_calls: bool) -> str | None:
    """`tool_use` that only carried a JSON answer (no tool calls left) is a plain stop."""
    if stop_reason is None:
        return None
    if stop_reason == "tool_use" and not tool_calls:
        return "stop"
    return FINISH_REASONS.get(stop_reason, "stop")


def chat_usage(usage: JSON | None) -> Usage:
    """Anthropic's input_tokens exclude cache reads and writes; prompt_tokens includes them."""
    usage = usage or {}
    fresh = int(usage.get("input_tokens") or 0)
    read = int(usage.get("cache_read_input_tokens") or 0)
    written = int(usage.get("cache_creation_input_tokens") or 0)
    output = int(usage.get("output_tokens") or 0)
    prompt = fresh + read + written
    return {
        "prompt_tokens": prompt,
        "completion_tokens": output,
        "total_tokens": prompt + output,
        "prompt_tokens_details": {"cached_tokens": read, "cache_creation_tokens": written},
    }


def tool_arguments(value: Any) -> str:
    return orjson.dumps(value if value is not None else {}).decode()


def chat_message(blocks: list[JSON], json_tool: str | None = None) -> Message:
    """The assistant message for a list of Anthropic content blocks."""
    text: list[str] = []
    reasoning: list[str] = []
    calls: list[ToolCall] = []
    for block in blocks:
        kind = block.get("type")
        if kind == "text":
            text.append(str(block.get("text") or ""))
        elif kind == "tool_use" and json_tool is not None and block.get("name") == json_tool:
            text.append(tool_arguments(block.get("input")))
        elif kind == "tool_use":
            function: ToolCallFunction = {
                "name": str(block.get("name")),
                "arguments": tool_arguments(block.get("input")),
            }
            calls.append({"id": str(block.get("id")), "type": "function", "function": function})
        elif kind == "thinking":
            reasoning.append(str(block.get("thinking") or ""))
    message: dict[str, Any] = {"role": "assistant", "content": "".join(text) if text or not calls else None}
    if calls:
        message["tool_calls"] = calls
    if reasoning:
        message["reasoning_content"] = "".join(reasoning)
    return cast(Message, message)


def from_anthropic(message: JSON, *, created: int, json_tool: str | None = None) -> ChatCompletion:
    """The chat completion for a non-streamed Anthropic Message."""
    chat = chat_message(list(message.get("content") or []), json_tool)
    return {
        "id": str(message.get("id", "")),
        "object": "chat.completion",
        "created": created,
        "model": str(message.get("model", "")),
        "choices": [
            {
                "index": 0,
                "message": chat,
                "finish_reason": finish_reason(
                    message.get("stop_reason"), tool_calls=bool(chat.get("tool_calls"))
                ),
                "logprobs": None,
            }
        ],
        "usage": chat_usage(message.get("usage")),
    }
