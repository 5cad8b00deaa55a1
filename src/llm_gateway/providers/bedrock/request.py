"""An OpenAI chat request as a Bedrock Converse request: pure functions, no I/O.

Converse shapes follow botocore's service model (`bedrock-runtime/2023-09-30`). Every
OpenAI request field is mapped, accepted as a no-op when its value is the default, or
rejected with a 400 naming it; see the table in docs/providers.md ("## bedrock").
"""

from __future__ import annotations

import base64
import binascii
from typing import Any, cast

import orjson

from llm_gateway.core.errors import InvalidRequest
from llm_gateway.core.types import JSON, ChatRequest
from llm_gateway.providers.checks import (
    OUTPUT_EFFORTS,
    invalid,
    message_keys,
    message_role,
    optional_array,
    optional_object,
    string,
)

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
    "reasoning_effort", "additionalModelRequestFields", "guardrailConfig",
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
    "logit_bias": ({},),
}
"""Fields Converse cannot honour: accepted only with the value that changes nothing."""

NOT_IN_CONVERSE = "is not supported by Bedrock's Converse API"

MESSAGE_KEYS = message_keys(names=False)  # Converse has no participant names: `name` is a 400


def to_converse(chat: ChatRequest) -> JSON:
    """The Converse request body for an OpenAI chat request (the model id goes in the URL)."""
    request = cast(JSON, chat)
    check_fields(request)
    system, messages = converse_messages(request.get("messages"))
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
        "guardrailConfig": optional_object(request.get("guardrailConfig"), "guardrailConfig"),
    }
    return {key: value for key, value in sections.items() if value or key == "messages"}


def check_fields(request: JSON) -> None:
    for key, value in request.items():
        if key in MAPPED_FIELDS or value is None:
            continue
        if key not in DEFAULT_ONLY:
            raise invalid(key, NOT_IN_CONVERSE)
        if not any(value == default and type(value) is type(default) for default in DEFAULT_ONLY[key]):
            raise invalid(key, f"= {value!r} is not supported by Bedrock's Converse API")
    optional_object(request.get("stream_options"), "stream_options")


def additional_fields(request: JSON) -> JSON:
    """Converse's escape hatch for model-specific parameters; `top_k` is the documented one."""
    extra = dict(optional_object(request.get("additionalModelRequestFields"), "additionalModelRequestFields"))
    top_k = request.get("top_k")
    if top_k is not None:
        if isinstance(top_k, bool) or not isinstance(top_k, int):
            raise invalid("top_k", "must be an integer")
        extra["top_k"] = top_k
    return extra


def request_metadata(request: JSON) -> dict[str, str]:
    """`metadata` and `user` as Converse request metadata, kept with Bedrock's invocation logs."""
    metadata = optional_object(request.get("metadata"), "metadata")
    out = {key: string(value, f"metadata.{key}") for key, value in metadata.items()}
    if request.get("user") is not None:
        out["user"] = string(request["user"], "user")
    return out


def inference_config(request: JSON) -> JSON:
    config: JSON = {}
    for key in ("max_completion_tokens", "max_tokens"):
        value = request.get(key)
        if value is not None:
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise invalid(key, "must be a positive integer")
            config["maxTokens"] = value
            break
    for key, target in (("temperature", "temperature"), ("top_p", "topP")):
        value = request.get(key)
        if value is not None:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise invalid(key, "must be a number")
            config[target] = value
    stop = request.get("stop")
    stops = [stop] if isinstance(stop, str) else stop
    if stops is not None and (not isinstance(stops, list) or not all(isinstance(s, str) for s in stops)):
        raise invalid("stop", "must be a string or an array of strings")
    if stops:
        config["stopSequences"] = stops
    return config


def output_config(request: JSON) -> JSON:
    """`response_format` (json_schema is Converse structured output; `text` is the default)
    and `reasoning_effort` (Converse's `effort`)."""
    out: JSON = {}
    text_format = json_schema_format(request.get("response_format"))
    if text_format is not None:
        out["textFormat"] = text_format
    effort = request.get("reasoning_effort")
    if effort is not None:
        if not isinstance(effort, str) or effort not in OUTPUT_EFFORTS:
            raise invalid("reasoning_effort", f"must be one of {', '.join(OUTPUT_EFFORTS)}")
        out["effort"] = OUTPUT_EFFORTS[effort]
    return out


def json_schema_format(response_format: Any) -> JSON | None:
    kind = optional_object(response_format, "response_format").get("type")
    if response_format is None or kind == "text":
        return None
    if kind != "json_schema":
        raise invalid(
            "response_format", f"type {kind!r} is not supported by Bedrock's Converse API (use json_schema)"
        )
    spec = optional_object(response_format.get("json_schema"), "response_format.json_schema")
    schema: JSON = {
        "schema": orjson.dumps(
            optional_object(spec.get("schema"), "response_format.json_schema.schema")
        ).decode()
    }
    for key in ("name", "description"):
        if spec.get(key):
            schema[key] = string(spec[key], f"response_format.json_schema.{key}")
    return {"type": "json_schema", "structure": {"jsonSchema": schema}}


def service_tier(request: JSON) -> JSON | None:
    tier = request.get("service_tier")
    if tier in (None, "auto"):
        return None
    if not isinstance(tier, str) or tier not in SERVICE_TIERS:
        raise invalid("service_tier", f"{tier!r} is not one of Bedrock's tiers")
    return {"type": tier}


def tool_config(request: JSON, *, uses_tools: bool) -> JSON | None:
    """`tools` and `tool_choice`. With `tool_choice: none` the tools are left out, unless the
    history holds tool calls, which Converse only accepts alongside a tool config."""
    tools = optional_array(request.get("tools"), "tools")
    choice = request.get("tool_choice")
    specs = [tool_spec(tool, index) for index, tool in enumerate(tools)]
    if not tools and choice not in (None, "none", "auto"):
        raise invalid("tool_choice", "forces a tool, but 'tools' is empty")
    tool_choice = None if choice in (None, "none") else converse_tool_choice(choice)
    if not tools or (choice == "none" and not uses_tools):
        return None
    config: JSON = {"tools": specs}
    if tool_choice is not None:
        config["toolChoice"] = tool_choice
    return config


def tool_spec(tool: Any, index: int) -> JSON:
    where = f"tools[{index}]"
    function = tool.get("function") if isinstance(tool, dict) and tool.get("type") == "function" else None
    if not isinstance(function, dict) or not function.get("name"):
        raise invalid(where, "must be a function tool with a name")
    parameters = function.get("parameters") or {"type": "object", "properties": {}}
    spec: JSON = {
        "name": string(function["name"], f"{where}.function.name"),
        "inputSchema": {"json": optional_object(parameters, f"{where}.function.parameters")},
    }
    if function.get("description"):
        spec["description"] = string(function["description"], f"{where}.function.description")
    strict = function.get("strict")
    if strict is not None:
        if not isinstance(strict, bool):
            raise invalid(f"{where}.function.strict", "must be a boolean")
        spec["strict"] = strict
    return {"toolSpec": spec}


def converse_tool_choice(choice: Any) -> JSON:
    if choice == "auto":
        return {"auto": {}}
    if choice == "required":
        return {"any": {}}
    function = choice.get("function") if isinstance(choice, dict) else None
    name = function.get("name") if isinstance(function, dict) else None
    if not isinstance(name, str) or not name:
        raise invalid("tool_choice", f"{choice!r} is not supported")
    return {"tool": {"name": name}}


def converse_messages(messages: Any) -> tuple[list[JSON], list[JSON]]:
    """System blocks and Converse messages: system/developer messages are lifted to `system`,
    tool results become `toolResult` blocks of a user turn, consecutive same-role turns merge."""
    system: list[JSON] = []
    turns: list[JSON] = []
    for index, message in enumerate(optional_array(messages, "messages")):
        where = f"messages[{index}]"
        role = message_role(message, where, MESSAGE_KEYS, "bedrock")
        if role in ("system", "developer"):
            system += [{"text": text} for text in text_parts(message.get("content"), where) if text]
            continue
        if role == "user":
            blocks = content_blocks(message.get("content"), where)
        elif role == "assistant":
            blocks = assistant_blocks(message, where)
        else:
            blocks = [tool_result_block(message, where)]
        converse_role = "assistant" if role == "assistant" else "user"
        if turns and turns[-1]["role"] == converse_role:
            turns[-1]["content"] += blocks
        elif blocks:
            turns.append({"role": converse_role, "content": blocks})
    return system, turns


def _parts(content: Any, where: str) -> list[tuple[str, JSON]]:
    """(param, part) for each part of an array content; each part must be an object."""
    parts = []
    for index, part in enumerate(optional_array(content, f"{where}.content")):
        if not isinstance(part, dict):
            raise invalid(f"{where}.content[{index}]", "must be an object")
        parts.append((f"{where}.content[{index}]", part))
    return parts


def text_parts(content: Any, where: str) -> list[str]:
    if isinstance(content, str):
        return [content]
    texts = []
    for here, part in _parts(content, where):
        kind = part.get("type")
        if kind not in ("text", "refusal"):
            raise invalid(here, "must be text here")
        texts.append(string(part.get(kind), f"{here}.{kind}"))
    return texts


def content_blocks(content: Any, where: str) -> list[JSON]:
    """User content: text and images. Blank text is left out (Converse rejects it)."""
    if isinstance(content, str):
        return [{"text": content}] if content else []
    blocks: list[JSON] = []
    for here, part in _parts(content, where):
        kind = part.get("type")
        if kind == "text":
            if string(part.get("text"), f"{here}.text"):
                blocks.append({"text": part["text"]})
        elif kind == "image_url":
            blocks.append(image_part(part, here))
        else:
            raise invalid(here, f"of type {kind!r} is not supported by Bedrock's Converse API")
    return blocks


def image_part(part: JSON, where: str) -> JSON:
    image = part.get("image_url")
    return image_block(image.get("url") if isinstance(image, dict) else image, where)


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


def assistant_blocks(message: JSON, where: str) -> list[JSON]:
    """Text (a message-level `refusal` string included, as text), then `toolUse` blocks."""
    content = message.get("content")
    texts = [] if content is None else text_parts(content, where)
    refusal = message.get("refusal")
    if refusal is not None:
        texts.append(string(refusal, f"{where}.refusal"))
    blocks: list[JSON] = [{"text": text} for text in texts if text]
    for index, call in enumerate(optional_array(message.get("tool_calls"), f"{where}.tool_calls")):
        blocks.append(tool_use_block(call, f"{where}.tool_calls[{index}]"))
    return blocks


def tool_use_block(call: Any, where: str) -> JSON:
    if not isinstance(call, dict) or call.get("type") not in (None, "function"):
        raise invalid(where, "must be a function tool call")
    function = optional_object(call.get("function"), f"{where}.function")
    arguments = function.get("arguments") or "{}"
    try:
        tool_input = orjson.loads(string(arguments, f"{where}.function.arguments"))
    except orjson.JSONDecodeError:
        raise invalid(f"{where}.function.arguments", "is not valid JSON") from None
    return {
        "toolUse": {
            "toolUseId": string(call.get("id"), f"{where}.id"),
            "name": string(function.get("name"), f"{where}.function.name"),
            "input": tool_input,
        }
    }


def tool_result_block(message: JSON, where: str) -> JSON:
    """A tool message's text and data-URL images; any other part type is refused."""
    call_id = message.get("tool_call_id")
    if not isinstance(call_id, str) or not call_id:
        raise invalid(f"{where}.tool_call_id", "is required")
    content = message.get("content")
    if content is None or isinstance(content, str):
        return {"toolResult": {"toolUseId": call_id, "content": [{"text": content or ""}]}}
    parts: list[JSON] = []
    for here, part in _parts(content, where):
        kind = part.get("type")
        if kind == "text":
            parts.append({"text": string(part.get("text"), f"{here}.text")})
        elif kind == "image_url":
            parts.append(image_part(part, here))
        else:
            raise invalid(here, f"of type {kind!r} is not supported in a tool result by Bedrock")
    return {"toolResult": {"toolUseId": call_id, "content": parts}}
