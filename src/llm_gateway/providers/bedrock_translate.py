"""Pure translation between OpenAI chat and Bedrock's Converse API, both directions.

Converse shapes follow botocore's service model (`bedrock-runtime/2023-09-30`). Every
OpenAI request field is mapped, accepted as a no-op when its value is the default, or
rejected with a 400 naming it; see the table in docs/providers.md.
"""

from __future__ import annotations

import base64
import binascii
import time
import uuid
from typing import Any, cast

import orjson

from llm_gateway.core.errors import InvalidRequest
from llm_gateway.core.types import JSON, ChatCompletion, ChatRequest, Message, ToolCall, Usage

STOP_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "tool_use": "tool_calls",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "guardrail_intervened": "content_filter",
    "content_filtered": "content_filter",
}
IMAGE_FORMATS = {
    "image/png": "png",
    "image/jpeg": "jpeg",
    "image/jpg": "jpeg",
    "image/gif": "gif",
    "image/webp": "webp",
}
SERVICE_TIERS = frozenset({"default", "flex", "priority"})

MAPPED_FIELDS = frozenset({
    "model", "messages", "stream", "stream_options", "max_tokens", "max_completion_tokens", "temperature",
    "top_p", "stop", "tools", "tool_choice", "user", "metadata", "top_k", "response_format", "service_tier",
    "additionalModelRequestFields", "guardrailConfig",
})  # fmt: skip
"""Fields with a Converse counterpart. `additionalModelRequestFields` and `guardrailConfig` are
Converse's own fields, passed verbatim (clients send them with the SDK's `extra_body`)."""

DEFAULT_ONLY: dict[str, tuple[Any, ...]] = {
    "n": (1,),
    "parallel_tool_calls": (True,),
    "logprobs": (False,),
    "store": (False,),
    "presence_penalty": (0, 0.0),
    "frequency_penalty": (0, 0.0),
}
"""Fields Converse cannot honour: accepted only with the value that changes nothing."""


def to_converse(chat: ChatRequest) -> JSON:
    """The Converse request body for an OpenAI chat request (the model id goes in the URL)."""
    request = cast(JSON, chat)
    check_fields(request)
    system, messages = converse_messages(request.get("messages") or [])
    uses_tools = any("toolUse" in b or "toolResult" in b for m in messages for b in m["content"])
    sections = {
        "messages": messages,
        "system": system,
        "inferenceConfig": inference_config(request),
        "toolConfig": tool_config(request, uses_tools=uses_tools),
        "additionalModelRequestFields": additional_fields(request),
        "requestMetadata": request_metadata(request),
        "outputConfig": output_config(request),
        "serviceTier": service_tier(request),
        "guardrailConfig": request.get("guardrailConfig"),
    }
    return {key: value for key, value in sections.items() if value or key == "messages"}


def additional_fields(request: JSON) -> JSON:
    """Converse's escape hatch for model-specific parameters; `top_k` is the documented one."""
    extra = dict(request.get("additionalModelRequestFields") or {})
    if request.get("top_k") is not None:
        extra["top_k"] = request["top_k"]
    return extra


def request_metadata(request: JSON) -> dict[str, str]:
    """`metadata` and `user` as Converse request metadata, kept with Bedrock's invocation logs."""
    metadata = {str(k): str(v) for k, v in (request.get("metadata") or {}).items()}
    if request.get("user"):
        metadata["user"] = str(request["user"])
    return metadata


def check_fields(request: JSON) -> None:
    for key, value in request.items():
        if key in MAPPED_FIELDS or value is None:
            continue
        if key in DEFAULT_ONLY and value in DEFAULT_ONLY[key]:
            continue
        if key in DEFAULT_ONLY:
            raise InvalidRequest(f"'{key}' = {value!r} is not supported by Bedrock's Converse API", param=key)
        raise InvalidRequest(f"'{key}' is not supported by Bedrock's Converse API", param=key)


def inference_config(request: JSON) -> JSON:
    config: JSON = {}
    max_tokens = request.get("max_completion_tokens") or request.get("max_tokens")
    if max_tokens is not None:
        config["maxTokens"] = max_tokens
    if request.get("temperature") is not None:
        config["temperature"] = request["temperature"]
    if request.get("top_p") is not None:
        config["topP"] = request["top_p"]
    stop = request.get("stop")
    if stop:
        config["stopSequences"] = [stop] if isinstance(stop, str) else list(stop)
    return config


def output_config(request: JSON) -> JSON | None:
    """`response_format`: json_schema maps to Converse structured output; `text` is the default."""
    response_format = request.get("response_format")
    if not response_format or response_format.get("type") == "text":
        return None
    if response_format.get("type") != "json_schema":
        raise InvalidRequest(
            f"'response_format' type {response_format.get('type')!r} is not supported by Bedrock's "
            "Converse API (use json_schema)",
            param="response_format",
        )
    spec = response_format.get("json_schema") or {}
    schema: JSON = {"schema": orjson.dumps(spec.get("schema") or {}).decode()}
    for key in ("name", "description"):
        if spec.get(key):
            schema[key] = spec[key]
    return {"textFormat": {"type": "json_schema", "structure": {"jsonSchema": schema}}}


def service_tier(request: JSON) -> JSON | None:
    tier = request.get("service_tier")
    if tier in (None, "auto"):
        return None
    if tier not in SERVICE_TIERS:
        raise InvalidRequest(f"'service_tier' {tier!r} is not one of Bedrock's tiers", param="service_tier")
    return {"type": tier}


def tool_config(request: JSON, *, uses_tools: bool) -> JSON | None:
    """`tools` and `tool_choice`. With `tool_choice: none` the tools are left out, unless the
    history holds tool calls, which Converse only accepts alongside a tool config."""
    tools = request.get("tools") or []
    choice = request.get("tool_choice")
    if not tools and choice not in (None, "none", "auto"):
        raise InvalidRequest("'tool_choice' forces a tool, but 'tools' is empty", param="tool_choice")
    if not tools or (choice == "none" and not uses_tools):
        return None
    config: JSON = {"tools": [tool_spec(tool, index) for index, tool in enumerate(tools)]}
    if choice not in (None, "none"):
        config["toolChoice"] = converse_tool_choice(choice)
    return config


def tool_spec(tool: JSON, index: int) -> JSON:
    function = tool.get("function") if tool.get("type") == "function" else None
    if not isinstance(function, dict) or not function.get("name"):
        raise InvalidRequest(f"'tools[{index}]' must be a function tool with a name", param=f"tools[{index}]")
    spec: JSON = {
        "name": function["name"],
        "inputSchema": {"json": function.get("parameters") or {"type": "object", "properties": {}}},
    }
    if function.get("description"):
        spec["description"] = function["description"]
    if function.get("strict") is not None:
        spec["strict"] = bool(function["strict"])
    return {"toolSpec": spec}


def converse_tool_choice(choice: Any) -> JSON:
    if choice == "auto":
        return {"auto": {}}
    if choice == "required":
        return {"any": {}}
    name = (choice.get("function") or {}).get("name") if isinstance(choice, dict) else None
    if not name:
        raise InvalidRequest(f"'tool_choice' {choice!r} is not supported", param="tool_choice")
    return {"tool": {"name": name}}


def converse_messages(messages: list[Message]) -> tuple[list[JSON], list[JSON]]:
    """System blocks and Converse messages: system/developer messages are lifted to `system`,
    tool results become `toolResult` blocks of a user turn, consecutive same-role turns merge."""
    system: list[JSON] = []
    turns: list[JSON] = []
    for index, message in enumerate(messages):
        where = f"messages[{index}]"
        role = message.get("role")
        if message.get("name") is not None:
            raise InvalidRequest(
                f"'{where}.name' is not supported by Bedrock's Converse API", param=f"{where}.name"
            )
        if role in ("system", "developer"):
            system += [{"text": text} for text in text_parts(message.get("content"), where) if text]
            continue
        if role == "user":
            blocks = content_blocks(message.get("content"), where)
        elif role == "assistant":
            blocks = assistant_blocks(message, where)
        elif role == "tool":
            blocks = [tool_result_block(message, where)]
        else:
            raise InvalidRequest(
                f"'{where}.role' {role!r} is not supported by Bedrock", param=f"{where}.role"
            )
        converse_role = "assistant" if role == "assistant" else "user"
        if turns and turns[-1]["role"] == converse_role:
            turns[-1]["content"] += blocks
        elif blocks:
            turns.append({"role": converse_role, "content": blocks})
    return system, turns


def text_parts(content: Any, where: str) -> list[str]:
    if content is None:
        return []
    if isinstance(content, str):
        return [content]
    texts = []
    for index, part in enumerate(content):
        if part.get("type") not in ("text", "refusal"):
            raise InvalidRequest(
                f"'{where}.content[{index}]' must be text here", param=f"{where}.content[{index}]"
            )
        texts.append(str(part.get("text") or part.get("refusal") or ""))
    return texts


def content_blocks(content: Any, where: str) -> list[JSON]:
    """User content: text and images. Blank text is left out (Converse rejects it)."""
    if content is None or isinstance(content, str):
        return [{"text": content}] if content else []
    blocks: list[JSON] = []
    for index, part in enumerate(content):
        kind = part.get("type")
        if kind == "text":
            if part.get("text"):
                blocks.append({"text": part["text"]})
        elif kind == "image_url":
            image = part.get("image_url") or {}
            blocks.append(
                image_block(
                    image.get("url") if isinstance(image, dict) else image, f"{where}.content[{index}]"
                )
            )
        else:
            raise InvalidRequest(
                f"'{where}.content[{index}]' of type {kind!r} is not supported by Bedrock's Converse API",
                param=f"{where}.content[{index}]",
            )
    return blocks


def image_block(url: Any, where: str) -> JSON:
    """A data URL as a Converse image block (bytes base64 in JSON). Bedrock cannot fetch URLs."""
    if not isinstance(url, str) or not url.startswith("data:"):
        raise InvalidRequest(
            f"'{where}': Bedrock accepts images only as base64 data URLs (data:image/png;base64,...), "
            "not remote URLs",
            param=where,
        )
    header, _, data = url[5:].partition(",")
    media_type, _, encoding = header.partition(";")
    image_format = IMAGE_FORMATS.get(media_type.lower())
    if image_format is None or encoding != "base64":
        raise InvalidRequest(
            f"'{where}': images must be base64 png, jpeg, gif or webp data URLs", param=where
        )
    try:
        base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidRequest(f"'{where}': the image data is not valid base64", param=where) from None
    return {"image": {"format": image_format, "source": {"bytes": data}}}


def assistant_blocks(message: Message, where: str) -> list[JSON]:
    blocks: list[JSON] = [{"text": text} for text in text_parts(message.get("content"), where) if text]
    for index, call in enumerate(message.get("tool_calls") or []):
        function = call.get("function") or {}
        arguments = function.get("arguments") or "{}"
        try:
            tool_input = orjson.loads(arguments)
        except orjson.JSONDecodeError:
            param = f"{where}.tool_calls[{index}].function.arguments"
            raise InvalidRequest(f"'{param}' is not valid JSON", param=param) from None
        blocks.append(
            {"toolUse": {"toolUseId": call.get("id"), "name": function.get("name"), "input": tool_input}}
        )
    return blocks


def tool_result_block(message: Message, where: str) -> JSON:
    content = message.get("content")
    if isinstance(content, list):
        parts = [
            image_block((p.get("image_url") or {}).get("url"), where) if p.get("type") == "image_url" else
            {"text": str(p.get("text") or "")}
            for p in content
        ]  # fmt: skip
    else:
        parts = [{"text": content or ""}]
    if not message.get("tool_call_id"):
        raise InvalidRequest(f"'{where}.tool_call_id' is required", param=f"{where}.tool_call_id")
    return {"toolResult": {"toolUseId": message["tool_call_id"], "content": parts}}


def from_converse(body: JSON, model: str, request_id: str | None = None) -> ChatCompletion:
    """A Converse response as an OpenAI chat completion."""
    blocks = ((body.get("output") or {}).get("message") or {}).get("content") or []
    text = "".join(b["text"] for b in blocks if "text" in b)
    reasoning = "".join(
        ((b["reasoningContent"].get("reasoningText") or {}).get("text") or "")
        for b in blocks
        if "reasoningContent" in b
    )
    calls: list[ToolCall] = [
        {
            "id": b["toolUse"]["toolUseId"],
            "type": "function",
            "function": {
                "name": b["toolUse"]["name"],
                "arguments": orjson.dumps(b["toolUse"].get("input", {})).decode(),
            },
        }
        for b in blocks
        if "toolUse" in b
    ]
    message: Message = {"role": "assistant", "content": text if text or not calls else None}
    if reasoning:
        message["reasoning_content"] = reasoning  # type: ignore[typeddict-unknown-key]
    if calls:
        message["tool_calls"] = calls
    completion: ChatCompletion = {
        "id": completion_id(request_id),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": finish_reason(body.get("stopReason")),
                "logprobs": None,
            }
        ],
    }
    if body.get("usage"):
        completion["usage"] = converse_usage(body["usage"])
    return completion


def completion_id(request_id: str | None) -> str:
    return f"chatcmpl-{request_id or uuid.uuid4().hex}"


def finish_reason(stop_reason: Any) -> str:
    return STOP_REASONS.get(str(stop_reason), "stop")


def converse_usage(usage: JSON) -> Usage:
    """Bedrock counts cache reads and writes apart from `inputTokens`; OpenAI's prompt_tokens
    includes cached tokens, with the cached share in `prompt_tokens_details`."""
    cache_read = int(usage.get("cacheReadInputTokens") or 0)
    cache_write = int(usage.get("cacheWriteInputTokens") or 0)
    prompt = int(usage.get("inputTokens") or 0) + cache_read + cache_write
    completion = int(usage.get("outputTokens") or 0)
    result: Usage = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }
    if cache_read or cache_write:
        result["prompt_tokens_details"] = {"cached_tokens": cache_read, "cache_creation_tokens": cache_write}
    return result
