"""An OpenAI chat request as an Anthropic Messages request: pure functions, no I/O.

Each OpenAI field is mapped, approximated, or rejected with an `InvalidRequest` that names
it; the decisions are tabled in docs/providers.md ("## anthropic"). Messages are reshaped
to what the Messages API demands: system and developer turns lifted into `system`, tool
results sent as `tool_result` blocks in a user turn, consecutive same-role turns merged.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from llm_gateway.core.errors import InvalidRequest
from llm_gateway.core.types import JSON, ChatRequest, Message
from llm_gateway.providers.checks import (
    OUTPUT_EFFORTS,
    invalid,
    message_keys,
    message_role,
    number,
    string,
    unsupported,
)

JSON_TOOL = "json_response"
"""The forced tool that carries a `response_format` JSON answer (see `structured_tool`)."""

# Fields read by the translation below, or by the provider (stream, stream_options).
_HANDLED = frozenset(
    {
        "model", "messages", "stream", "stream_options", "max_tokens", "max_completion_tokens",
        "temperature", "top_p", "top_k", "stop", "user", "safety_identifier", "tools", "tool_choice",
        "parallel_tool_calls", "response_format", "reasoning_effort", "thinking", "n", "logprobs",
        "top_logprobs", "presence_penalty", "frequency_penalty", "logit_bias",
    }
)  # fmt: skip
# Accepted and deliberately not sent: they have no Anthropic meaning (documented).
IGNORED = frozenset(
    {"seed", "store", "metadata", "service_tier", "prediction", "prompt_cache_key", "prompt_cache_retention"}
)
MESSAGE_KEYS = message_keys(names=True)  # `name` is accepted and not sent


def to_anthropic(request: ChatRequest, model: str, *, default_max_tokens: int) -> JSON:
    """The Messages API body for `request`, addressed to upstream `model`."""
    check_fields(request)
    system, turns = convert_messages(request.get("messages"))
    payload: JSON = {"model": model, "max_tokens": max_tokens(request, default_max_tokens), "messages": turns}
    if system is not None:
        payload["system"] = system
    payload.update(sampling(request))
    payload.update(tooling(request))
    if request.get("stream"):
        payload["stream"] = True
    return payload


def check_fields(request: ChatRequest) -> None:
    """Reject fields that would change the answer and that Anthropic cannot honour."""
    body: dict[str, Any] = dict(request)
    for key, value in body.items():
        if key == "modalities" and value == ["text"]:
            continue
        if value is not None and key not in _HANDLED and key not in IGNORED:
            raise unsupported(key, "is not supported by the anthropic provider")
    if body.get("n") not in (None, 1):
        raise unsupported("n", "must be 1: the anthropic provider returns one choice")
    if body.get("logprobs") or body.get("top_logprobs"):
        raise unsupported(
            "logprobs" if body.get("logprobs") else "top_logprobs", "is not available from Anthropic models"
        )
    for key in ("presence_penalty", "frequency_penalty"):
        if body.get(key):
            raise unsupported(key, "is not supported by the anthropic provider (only 0 is accepted)")
    if body.get("logit_bias"):
        raise unsupported("logit_bias", "is not supported by the anthropic provider")
    if not isinstance(body.get("stream_options") or {}, dict):
        raise invalid("stream_options", "must be an object")
    if not isinstance(body.get("parallel_tool_calls", False), bool | None):
        raise invalid("parallel_tool_calls", "must be a boolean")


def max_tokens(request: ChatRequest, default: int) -> int:
    for key in ("max_completion_tokens", "max_tokens"):
        value = request.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise unsupported(key, "must be a positive integer")
        return value
    return default


def sampling(request: ChatRequest) -> JSON:
    body: dict[str, Any] = dict(request)
    out: JSON = {}
    temperature = number(body, "temperature")
    if temperature is not None:
        # OpenAI's range is 0..2, Anthropic's 0..1: the top of the scale is clamped.
        out["temperature"] = min(float(temperature), 1.0)
    for key, kind in (("top_p", (int, float)), ("top_k", int)):
        if number(body, key, kind) is not None:
            out[key] = body[key]
    if body.get("thinking") is not None:
        if not isinstance(body["thinking"], dict):
            raise invalid("thinking", "must be an object")
        out["thinking"] = body["thinking"]
    stop = body.get("stop")
    if isinstance(stop, str):
        out["stop_sequences"] = [stop]
    elif isinstance(stop, list) and all(isinstance(item, str) for item in stop):
        if stop:
            out["stop_sequences"] = stop
    elif stop is not None:
        raise invalid("stop", "must be a string or an array of strings")
    key = "user" if body.get("user") is not None else "safety_identifier"
    if body.get(key) is not None:
        out["metadata"] = {"user_id": string(body[key], key)}
    effort = body.get("reasoning_effort")
    if effort is not None:
        if not isinstance(effort, str) or effort not in OUTPUT_EFFORTS:
            raise unsupported("reasoning_effort", f"must be one of {', '.join(OUTPUT_EFFORTS)}")
        out["output_config"] = {"effort": OUTPUT_EFFORTS[effort]}
    return out


def convert_messages(messages: Any) -> tuple[str | list[JSON] | None, list[JSON]]:
    """Split into the `system` value and alternating user/assistant turns."""
    if not isinstance(messages, list):
        raise invalid("messages", "must be an array of messages")
    system: list[JSON] = []
    turns: list[JSON] = []
    for index, message in enumerate(messages):
        where = f"messages[{index}]"
        role = check_message(message, where)
        if role in ("system", "developer"):
            system.extend(_text_blocks(message.get("content"), where))
            continue
        target_role, blocks = _CONVERTERS[role](message, where)
        if not blocks:
            continue
        if turns and turns[-1]["role"] == target_role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": target_role, "content": blocks})
    if not turns:
        raise InvalidRequest(
            "'messages' must contain at least one user or assistant message", param="messages"
        )
    return _system_value(system), [_compact(turn) for turn in turns]


def check_message(message: Any, where: str) -> str:
    """The message's role, once its keys are known ones for that role."""
    if isinstance(message, dict) and message.get("role") == "assistant" and message.get("function_call"):
        raise unsupported(f"{where}.function_call", "is deprecated and not supported; use tool_calls")
    return message_role(message, where, MESSAGE_KEYS, "anthropic")


def _system_value(blocks: list[JSON]) -> str | list[JSON] | None:
    if not blocks:
        return None
    return blocks[0]["text"] if len(blocks) == 1 else blocks


def _compact(turn: JSON) -> JSON:
    """A turn holding one plain text block is sent with string content, the common form."""
    content = turn["content"]
    if len(content) == 1 and content[0].get("type") == "text":
        return {"role": turn["role"], "content": content[0]["text"]}
    return turn


def _text_blocks(content: Any, where: str) -> list[JSON]:
    if content is None or content == "":
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if not isinstance(content, list):
        raise unsupported(f"{where}.content", "must be a string or an array of content parts")
    blocks = []
    for i, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind not in ("text", "refusal"):
            raise unsupported(f"{where}.content[{i}]", "must be a text part here")
        text = string(part.get(kind), f"{where}.content[{i}].{kind}")
        if text:
            blocks.append({"type": "text", "text": text})
    return blocks


def _user(message: Message, where: str) -> tuple[str, list[JSON]]:
    content = message.get("content")
    if not isinstance(content, list):
        return "user", _text_blocks(content, where)
    blocks: list[JSON] = []
    for i, part in enumerate(content):
        here = f"{where}.content[{i}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "image_url":
            image = part.get("image_url")
            url = image.get("url") if isinstance(image, dict) else image
            blocks.append(image_block(string(url, f"{here}.image_url.url"), here))
        elif kind == "file":
            blocks.append(document_block(part.get("file"), here))
        elif kind == "text":
            if string(part.get("text"), f"{here}.text"):
                blocks.append({"type": "text", "text": part["text"]})
        else:
            raise unsupported(here, f"type {kind!r} is not supported (text, image_url, file)")
    return "user", blocks


def image_block(url: str, where: str) -> JSON:
    """A data URL becomes a base64 source, an http(s) URL a url source."""
    if url.startswith("data:"):
        media_type, data = _data_url(url, where)
        return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}
    if url.startswith(("http://", "https://")):
        return {"type": "image", "source": {"type": "url", "url": url}}
    raise unsupported(f"{where}.image_url.url", "must be a data: URL or an http(s) URL")


def document_block(file: Any, where: str) -> JSON:
    data_url = file.get("file_data") if isinstance(file, dict) else None
    if not isinstance(data_url, str) or not data_url.startswith("data:"):
        raise unsupported(f"{where}.file", "must carry file_data as a data: URL (file_id is not supported)")
    media_type, data = _data_url(data_url, where)
    if media_type != "application/pdf":
        raise unsupported(
            f"{where}.file", f"media type {media_type!r} is not supported (only application/pdf)"
        )
    return {"type": "document", "source": {"type": "base64", "media_type": media_type, "data": data}}


def _data_url(url: str, where: str) -> tuple[str, str]:
    header, comma, data = url.partition(",")
    if not comma or not header.endswith(";base64"):
        raise unsupported(where, "must be a base64 data URL (data:<media type>;base64,<data>)")
    return header[5:].split(";")[0], data


def _assistant(message: Message, where: str) -> tuple[str, list[JSON]]:
    """Text (a message-level `refusal` string included, as text) then `tool_use` blocks."""
    blocks = _text_blocks(message.get("content"), where)
    refusal = dict(message).get("refusal")
    if refusal is not None and string(refusal, f"{where}.refusal"):
        blocks.append({"type": "text", "text": refusal})
    calls = message.get("tool_calls") or []
    if not isinstance(calls, list):
        raise invalid(f"{where}.tool_calls", "must be an array")
    for i, call in enumerate(calls):
        blocks.append(tool_use_block(call, f"{where}.tool_calls[{i}]"))
    return "assistant", blocks


def tool_use_block(call: Any, where: str) -> JSON:
    if not isinstance(call, dict) or call.get("type") not in (None, "function"):
        raise unsupported(where, "must be a function tool call")
    function = call.get("function")
    if not isinstance(function, dict):
        raise invalid(f"{where}.function", "must be an object")
    arguments = function.get("arguments") or "{}"
    try:
        parsed = orjson.loads(string(arguments, f"{where}.function.arguments"))
    except orjson.JSONDecodeError:
        parsed = None
    if not isinstance(parsed, dict):
        raise unsupported(f"{where}.function.arguments", "must be a JSON object")
    return {
        "type": "tool_use",
        "id": string(call.get("id"), f"{where}.id"),
        "name": string(function.get("name"), f"{where}.function.name"),
        "input": parsed,
    }


def _tool(message: Message, where: str) -> tuple[str, list[JSON]]:
    call_id = message.get("tool_call_id")
    if not isinstance(call_id, str):
        raise unsupported(f"{where}.tool_call_id", "is required on a tool message")
    content = message.get("content")
    result: str | list[JSON] = content if isinstance(content, str) else _text_blocks(content, where)
    return "user", [{"type": "tool_result", "tool_use_id": call_id, "content": result}]


_CONVERTERS: dict[str, Callable[[Message, str], tuple[str, list[JSON]]]] = {
    "user": _user,
    "assistant": _assistant,
    "tool": _tool,
}


def tooling(request: ChatRequest) -> JSON:
    """`tools`, `tool_choice`, `parallel_tool_calls` and a JSON `response_format`."""
    body: dict[str, Any] = dict(request)
    out: JSON = {}
    tools = body.get("tools")
    if not isinstance(tools or [], list):
        raise invalid("tools", "must be an array")
    if tools:
        out["tools"] = [anthropic_tool(tool, f"tools[{i}]") for i, tool in enumerate(tools)]
        choice = tool_choice(body.get("tool_choice"))
        if body.get("parallel_tool_calls") is False and (choice or {}).get("type") != "none":
            choice = {**(choice or {"type": "auto"}), "disable_parallel_tool_use": True}
        if choice is not None:
            out["tool_choice"] = choice
    elif body.get("tool_choice") not in (None, "none", "auto"):
        raise unsupported("tool_choice", "requires 'tools'")
    schema = json_schema(body.get("response_format"))
    if schema is not None:
        if tools:
            raise unsupported("response_format", "cannot be combined with 'tools' on the anthropic provider")
        out["tools"] = [
            {
                "name": JSON_TOOL,
                "description": "Answer with JSON matching this schema.",
                "input_schema": schema,
            }
        ]
        out["tool_choice"] = {"type": "tool", "name": JSON_TOOL}
    return out


def anthropic_tool(tool: Any, where: str) -> JSON:
    function = tool.get("function") if isinstance(tool, dict) and tool.get("type") == "function" else None
    if not isinstance(function, dict) or not isinstance(function.get("name"), str):
        raise unsupported(where, "must be {'type': 'function', 'function': {'name': ...}}")
    schema = function.get("parameters") or {"type": "object", "properties": {}}
    if not isinstance(schema, dict):
        raise invalid(f"{where}.function.parameters", "must be an object (a JSON schema)")
    out: JSON = {"name": function["name"], "input_schema": schema}
    if function.get("description"):
        out["description"] = string(function["description"], f"{where}.function.description")
    return out


def tool_choice(choice: Any) -> JSON | None:
    if choice is None:
        return None
    named = {"auto": {"type": "auto"}, "none": {"type": "none"}, "required": {"type": "any"}}
    if isinstance(choice, str) and choice in named:
        return named[choice]
    function = (
        choice.get("function") if isinstance(choice, dict) and choice.get("type") == "function" else None
    )
    if isinstance(function, dict) and isinstance(function.get("name"), str):
        return {"type": "tool", "name": function["name"]}
    raise unsupported(
        "tool_choice", "must be auto, none, required or {'type': 'function', 'function': {'name': ...}}"
    )


def json_schema(response_format: Any) -> JSON | None:
    """The schema a JSON `response_format` asks for, or None for plain text.

    Anthropic has no JSON mode, so the answer is approximated by forcing one tool whose
    input schema is the requested schema; its input comes back as the message content.
    """
    if response_format is None:
        return None
    kind = response_format.get("type") if isinstance(response_format, dict) else None
    if kind == "text":
        return None
    if kind == "json_object":
        return {"type": "object"}
    if kind == "json_schema":
        spec = response_format.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, dict) else None
        if isinstance(schema, dict) and schema.get("type") == "object":
            return schema
        raise unsupported("response_format", "json_schema.schema must be a JSON schema of type 'object'")
    raise unsupported("response_format", "type must be text, json_object or json_schema")


def structured_tool(request: ChatRequest) -> str | None:
    """The tool name whose input is the answer's content, when a JSON format was asked."""
    body: dict[str, Any] = dict(request)
    return JSON_TOOL if json_schema(body.get("response_format")) is not None else None
