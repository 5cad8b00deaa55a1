"""The `/v1/messages` front door for non-Anthropic models: an Anthropic Messages request as
an OpenAI chat request, and a chat completion back as an Anthropic Message. Pure functions.

This is the reverse of `request` / `response`; its decisions are tabled
in docs/providers.md ("## anthropic", front door). `tool_result` blocks become `tool`
messages placed before the rest of their user turn; `thinking` blocks (and their
signatures), `cache_control` marks and `context_management` edits have no chat equivalent
and are not forwarded, as documented; a `system` turn inside `messages` (Claude Code sends
one for model names it does not know) stays a system message where it stands. A `thread`
is refused with the `error_code` the SDKs' thread helpers fall back on.
"""

from __future__ import annotations

import math
from typing import Any, cast

import orjson

from llm_gateway.core.errors import InvalidRequest
from llm_gateway.core.types import (
    JSON,
    ChatCompletion,
    ChatRequest,
    Message,
    ToolCall,
    ToolCallFunction,
    Usage,
)
from llm_gateway.providers.checks import messages_array, messages_invalid, messages_string

STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}

# Read by the translation below; anything else with a value is refused, not dropped.
_HANDLED = frozenset(
    {
        "model", "messages", "system", "max_tokens", "stop_sequences", "temperature", "top_p",
        "top_k", "stream", "tools", "tool_choice", "metadata", "output_config", "context_management",
        "thread",
    }
)  # fmt: skip
# Accepted and not forwarded: they tune Anthropic's own serving or caching (documented).
IGNORED = frozenset(
    {"thinking", "service_tier", "cache_control", "speed", "diagnostics", "user_profile_id", "workspace_id"}
)
THREAD_UNSUPPORTED = "thread_unsupported_request"
"""The `error.details.error_code` for a `thread` this door cannot hold: the SDKs' thread
helpers (`unsupported_request_behavior="continue_unthreaded"`) resend without it."""
EFFORTS = {"low": "low", "medium": "medium", "high": "high", "xhigh": "high", "max": "high"}

IMAGE_TOKENS = 1600
"""count_tokens' flat estimate per image or document: about a 1.15-megapixel image."""


def to_chat_request(body: JSON) -> ChatRequest:
    """The chat request for an Anthropic Messages body (addressed to the same public model)."""
    for key, value in body.items():
        if value is not None and key not in _HANDLED and key not in IGNORED:
            raise messages_invalid(key, "is not supported for this model (it is not served by Anthropic)")
    if body.get("thread") is not None:
        raise InvalidRequest(
            "thread: is not supported for this model (it is not served by Anthropic); "
            "send the full conversation without `thread`",
            param="thread",
            code=THREAD_UNSUPPORTED,
        )
    context_edits(body.get("context_management"))
    max_tokens = body.get("max_tokens")
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        raise messages_invalid("max_tokens", "Field required (a positive integer)")
    request: dict[str, Any] = {"messages": chat_messages(body), "max_tokens": max_tokens}
    if isinstance(body.get("model"), str):
        request["model"] = body["model"]
    for key, kind in (("temperature", (int, float)), ("top_p", (int, float)), ("top_k", int)):
        value = body.get(key)
        if value is not None:
            if isinstance(value, bool) or not isinstance(value, kind):
                raise messages_invalid(
                    key, "Input should be a valid " + ("integer" if kind is int else "number")
                )
            request[key] = value
    stop = messages_array(body.get("stop_sequences"), "stop_sequences")
    if stop:
        request["stop"] = [messages_string(item, f"stop_sequences.{i}") for i, item in enumerate(stop)]
    request.update(user_field(body.get("metadata")))
    request.update(chat_tools(body))
    request.update(output_options(body.get("output_config")))
    if body.get("stream"):
        request["stream"] = True
        request["stream_options"] = {"include_usage": True}
    return cast(ChatRequest, request)


def context_edits(value: Any) -> None:
    """`context_management` is checked and not applied: it asks Anthropic to clear old
    thinking or tool results server-side; thinking is never sent to other models anyway,
    and the rest of the conversation is sent whole (the model's own context limit applies)."""
    if value is None:
        return
    edits = value.get("edits") if isinstance(value, dict) else None
    if not isinstance(value, dict) or (edits is not None and not isinstance(edits, list)):
        raise messages_invalid("context_management", "must be an object with an `edits` array")
    for index, edit in enumerate(edits or ()):
        if not isinstance(edit, dict) or not isinstance(edit.get("type"), str):
            raise messages_invalid(f"context_management.edits.{index}", "must be an object with a `type`")


def user_field(metadata: Any) -> JSON:
    """`metadata.user_id` as the chat `user`; Anthropic's metadata has no other key."""
    if metadata is None:
        return {}
    if not isinstance(metadata, dict):
        raise messages_invalid("metadata", "Input should be a valid dictionary")
    for key, value in metadata.items():
        if key != "user_id" and value is not None:
            raise messages_invalid(f"metadata.{key}", "Extra inputs are not permitted")
    user = metadata.get("user_id")
    return {} if user is None else {"user": messages_string(user, "metadata.user_id")}


def chat_messages(body: JSON) -> list[Message]:
    messages: list[Message] = []
    system = system_text(body.get("system"))
    if system:
        messages.append({"role": "system", "content": system})
    turns = body.get("messages")
    if not isinstance(turns, list) or not turns:
        raise messages_invalid("messages", "must be a non-empty array")
    for index, turn in enumerate(turns):
        role = turn.get("role") if isinstance(turn, dict) else None
        for key, value in turn.items() if isinstance(turn, dict) else ():
            if key not in ("role", "content") and value is not None:
                raise messages_invalid(f"messages.{index}.{key}", "Extra inputs are not permitted")
        if role == "user":
            messages.extend(_user(turn.get("content"), f"messages.{index}"))
        elif role == "assistant":
            messages.extend(_assistant(turn.get("content"), f"messages.{index}"))
        elif role == "system":
            text = system_text(turn.get("content"), f"messages.{index}.content")
            messages.append({"role": "system", "content": text})
        else:
            raise messages_invalid(f"messages.{index}.role", "must be 'user', 'assistant' or 'system'")
    return messages


def system_text(system: Any, where: str = "system") -> str:
    """`system` (or a system turn's content) as one string: blocks are joined with blank lines."""
    if system is None or isinstance(system, str):
        return system or ""
    if not isinstance(system, list):
        raise messages_invalid(where, "must be a string or an array of text blocks")
    parts = []
    for index, block in enumerate(system):
        if not isinstance(block, dict) or block.get("type") != "text":
            raise messages_invalid(f"{where}.{index}", "must be a text block")
        parts.append(messages_string(block.get("text"), f"{where}.{index}.text"))
    return "\n\n".join(parts)


def _blocks(content: Any, where: str) -> list[JSON]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if not isinstance(content, list) or not all(isinstance(block, dict) for block in content):
        raise messages_invalid(f"{where}.content", "must be a string or an array of content blocks")
    return content


def _user(content: Any, where: str) -> list[Message]:
    """Tool results become `tool` messages, sent first; the other blocks one user message."""
    results: list[Message] = []
    parts: list[JSON] = []
    for index, block in enumerate(_blocks(content, where)):
        at = f"{where}.content.{index}"
        kind = block.get("type")
        if kind == "tool_result":
            results.append(tool_message(block, at))
        elif kind == "text":
            parts.append({"type": "text", "text": messages_string(block.get("text"), f"{at}.text")})
        elif kind == "image":
            parts.append({"type": "image_url", "image_url": {"url": image_url(block.get("source"), at)}})
        elif kind == "document":
            parts.append(document_part(block.get("source"), at))
        else:
            raise messages_invalid(at, f"block type {kind!r} is not supported for this model")
    if not parts:
        return results
    if len(parts) == 1 and parts[0]["type"] == "text":
        return [*results, {"role": "user", "content": str(parts[0]["text"])}]
    return [*results, {"role": "user", "content": parts}]


def image_url(source: Any, where: str) -> str:
    kind = source.get("type") if isinstance(source, dict) else None
    if kind == "base64":
        media_type = messages_string(source.get("media_type"), f"{where}.source.media_type")
        return f"data:{media_type};base64,{messages_string(source.get('data'), f'{where}.source.data')}"
    if kind == "url":
        return messages_string(source.get("url"), f"{where}.source.url")
    raise messages_invalid(f"{where}.source", "must be a base64 or url image source")


def document_part(source: Any, where: str) -> JSON:
    kind = source.get("type") if isinstance(source, dict) else None
    if kind == "text":
        return {"type": "text", "text": messages_string(source.get("data"), f"{where}.source.data")}
    if kind == "base64" and source.get("media_type") == "application/pdf":
        data_url = (
            f"data:application/pdf;base64,{messages_string(source.get('data'), f'{where}.source.data')}"
        )
        return {"type": "file", "file": {"filename": "document.pdf", "file_data": data_url}}
    raise messages_invalid(
        f"{where}.source", "only base64 PDF and plain-text documents are supported for this model"
    )


def tool_message(block: JSON, where: str) -> Message:
    """A `tool_result` as a tool message; `is_error` is kept as an "Error: " prefix."""
    content = block.get("content")
    if content is None:
        text = ""
    elif isinstance(content, str):
        text = content
    else:
        texts = []
        for index, part in enumerate(_blocks(content, where)):
            if part.get("type") != "text":
                raise messages_invalid(
                    f"{where}.content.{index}", "only text tool results are supported for this model"
                )
            texts.append(messages_string(part.get("text"), f"{where}.content.{index}.text"))
        text = "".join(texts)
    if block.get("is_error"):
        text = f"Error: {text}"
    call_id = messages_string(block.get("tool_use_id"), f"{where}.tool_use_id")
    return {"role": "tool", "tool_call_id": call_id, "content": text}


def _assistant(content: Any, where: str) -> list[Message]:
    text: list[str] = []
    calls: list[ToolCall] = []
    for index, block in enumerate(_blocks(content, where)):
        kind = block.get("type")
        at = f"{where}.content.{index}"
        if kind == "text":
            text.append(messages_string(block.get("text"), f"{at}.text"))
        elif kind == "tool_use":
            calls.append(tool_call(block, at))
        elif kind not in ("thinking", "redacted_thinking"):
            raise messages_invalid(at, f"block type {kind!r} is not supported for this model")
    message: Message = {"role": "assistant", "content": "".join(text) if text or not calls else None}
    if calls:
        message["tool_calls"] = calls
    return [message]


def tool_call(block: JSON, where: str) -> ToolCall:
    arguments = block.get("input") or {}
    if not isinstance(arguments, dict):
        raise messages_invalid(f"{where}.input", "Input should be a valid dictionary")
    function: ToolCallFunction = {
        "name": messages_string(block.get("name"), f"{where}.name"),
        "arguments": orjson.dumps(arguments).decode(),
    }
    return {"id": messages_string(block.get("id"), f"{where}.id"), "type": "function", "function": function}


def chat_tools(body: JSON) -> JSON:
    out: JSON = {}
    tools = messages_array(body.get("tools"), "tools")
    if tools:
        out["tools"] = [function_tool(tool, f"tools.{index}") for index, tool in enumerate(tools)]
    choice = body.get("tool_choice")
    if choice is None:
        return out
    if not isinstance(choice, dict):
        raise messages_invalid("tool_choice", "Input should be a valid dictionary")
    kind = choice.get("type")
    named: dict[str, Any] = {"auto": "auto", "any": "required", "none": "none"}
    if isinstance(kind, str) and kind in named:
        out["tool_choice"] = named[kind]
    elif kind == "tool" and isinstance(choice.get("name"), str):
        out["tool_choice"] = {"type": "function", "function": {"name": choice["name"]}}
    else:
        raise messages_invalid("tool_choice", "must be auto, any, none or {'type': 'tool', 'name': ...}")
    if choice.get("disable_parallel_tool_use") and tools:
        out["parallel_tool_calls"] = False
    return out


def function_tool(tool: Any, where: str) -> JSON:
    if (
        not isinstance(tool, dict)
        or tool.get("type") not in (None, "custom")
        or not isinstance(tool.get("name"), str)
    ):
        kind = tool.get("type") if isinstance(tool, dict) else None
        raise messages_invalid(where, f"only custom tools are supported for this model (got type {kind!r})")
    schema = tool.get("input_schema") or {"type": "object"}
    if not isinstance(schema, dict):
        raise messages_invalid(f"{where}.input_schema", "Input should be a valid dictionary")
    function: JSON = {"name": tool["name"], "parameters": schema}
    if tool.get("description"):
        function["description"] = messages_string(tool["description"], f"{where}.description")
    return {"type": "function", "function": function}


def output_options(config: Any) -> JSON:
    """`output_config`: a JSON schema `format` becomes `response_format`, `effort` the
    `reasoning_effort` of OpenAI reasoning models (xhigh and max are capped at high)."""
    if config is None:
        return {}
    if not isinstance(config, dict):
        raise messages_invalid("output_config", "must be an object")
    out: JSON = {}
    schema_format = config.get("format")
    if schema_format is not None:
        if not isinstance(schema_format, dict) or not isinstance(schema_format.get("schema"), dict):
            raise messages_invalid("output_config.format", "must be {'type': 'json_schema', 'schema': {...}}")
        spec = {"name": "output", "schema": schema_format["schema"]}
        out["response_format"] = {"type": "json_schema", "json_schema": spec}
    effort = config.get("effort")
    if effort is not None:
        if not isinstance(effort, str) or effort not in EFFORTS:
            raise messages_invalid("output_config.effort", f"must be one of {', '.join(EFFORTS)}")
        out["reasoning_effort"] = EFFORTS[effort]
    return out


def stop_reason(finish_reason: str | None) -> str:
    return STOP_REASONS.get(finish_reason or "stop", "end_turn")


def tool_input(arguments: str | None) -> Any:
    """Tool arguments as an input object; text that is not a JSON object is kept under a key."""
    if not arguments:
        return {}
    try:
        value = orjson.loads(arguments)
    except orjson.JSONDecodeError:
        return {"_raw_arguments": arguments}
    return value if isinstance(value, dict) else {"_raw_arguments": arguments}


def message_usage(usage: Usage | None) -> JSON:
    """Chat usage as Anthropic's: input_tokens excludes the cached (read) part."""
    usage = usage or {}
    prompt = int(usage.get("prompt_tokens") or 0)
    cached = int((usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0)
    return {
        "input_tokens": max(0, prompt - cached),
        "output_tokens": int(usage.get("completion_tokens") or 0),
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": cached,
    }


def content_blocks(message: Message) -> list[JSON]:
    content = message.get("content")
    text = (
        content
        if isinstance(content, str)
        else "".join(str(part.get("text", "")) for part in content or [] if part.get("type") == "text")
    )
    blocks: list[JSON] = [{"type": "text", "text": text}] if text else []
    for call in message.get("tool_calls") or []:
        function = call.get("function") or {}
        blocks.append(
            {
                "type": "tool_use",
                "id": call.get("id"),
                "name": function.get("name"),
                "input": tool_input(function.get("arguments")),
            }
        )
    return blocks


def to_message(completion: ChatCompletion) -> JSON:
    """The Anthropic Message for a non-streamed chat completion (its first choice)."""
    choices = completion.get("choices") or []
    message: Message = choices[0]["message"] if choices else {"role": "assistant", "content": ""}
    return {
        "id": completion.get("id") or "msg_gateway",
        "type": "message",
        "role": "assistant",
        "model": completion.get("model", ""),
        "content": content_blocks(message),
        "stop_reason": stop_reason(choices[0].get("finish_reason") if choices else None),
        "stop_sequence": None,
        "usage": message_usage(completion.get("usage")),
    }


def estimate_input_tokens(body: JSON) -> int:
    """An honest estimate for models without a count_tokens API: about 4 characters per token
    over every text the model reads (system, messages, tool calls and results, tool
    definitions), plus 3 tokens per message and a flat `IMAGE_TOKENS` per image or document.
    """
    chars = len(system_text(body.get("system")))
    images = 0
    turns = messages_array(body.get("messages"), "messages")
    for turn in turns:
        for block in _blocks(turn.get("content") if isinstance(turn, dict) else "", "messages"):
            kind = block.get("type")
            if kind in ("image", "document"):
                images += 1
            elif kind == "tool_use":
                chars += len(str(block.get("name", ""))) + len(orjson.dumps(block.get("input") or {}))
            elif kind == "tool_result":
                chars += len(orjson.dumps(block.get("content") or ""))
            else:
                chars += len(str(block.get("text", "")))
    for tool in messages_array(body.get("tools"), "tools"):
        chars += len(orjson.dumps(tool))
    return math.ceil(chars / 4) + 3 * len(turns) + IMAGE_TOKENS * images
