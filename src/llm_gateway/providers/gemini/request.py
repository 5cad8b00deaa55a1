"""OpenAI chat request → Gemini `GenerateContentRequest`, as pure functions.

Every OpenAI field is mapped, approximated, or rejected with a 400 that names it; the
table under "## gemini" in docs/providers.md is the contract these functions implement.
Nothing here does I/O, so every decision is unit-tested directly.
"""

from __future__ import annotations

import base64
import binascii
import mimetypes
from collections.abc import Callable
from typing import Any

import orjson

from llm_gateway.core.errors import InvalidRequest
from llm_gateway.core.types import JSON, ChatRequest
from llm_gateway.providers.checks import invalid, message_keys, message_role, number

# Read by the provider rather than translated: `model` goes into the URL, `stream` picks
# the endpoint, `stream_options` the final usage chunk, `parallel_tool_calls` how many
# calls of an answer are kept. `user` has no Gemini counterpart and is not sent (documented).
CONTROL_FIELDS = frozenset({"model", "messages", "stream", "stream_options", "parallel_tool_calls", "user"})

# OpenAI `reasoning_effort` → Gemini thinking budget, as Google's own OpenAI layer maps it.
THINKING_BUDGETS = {"none": 0, "minimal": 512, "low": 1024, "medium": 8192, "high": 24576}

TOOL_MODES = {"auto": "AUTO", "none": "NONE", "required": "ANY"}

MESSAGE_KEYS = message_keys(names=True)  # `name` is accepted and not sent

# Accepted and not sent, as for the anthropic provider: `store` and `metadata` ask OpenAI to
# keep or tag the completion in its own dashboard; they cannot change the answer.
NOT_SENT: dict[str, type] = {"store": bool, "metadata": dict}

# A tool call id carries Gemini's thought signature after this mark (see `tool_call_id`).
SIGNATURE_MARK = "_sig_"


def to_gemini(request: ChatRequest) -> JSON:
    """The `generateContent` body for an OpenAI chat request; raises InvalidRequest on what
    Gemini cannot express."""
    body: JSON = dict(request)
    _reject_unknown(body)
    system, contents = to_contents(body.get("messages"))
    payload: JSON = {"contents": contents}
    if system:
        payload["systemInstruction"] = {"parts": system}
    config = generation_config(body)
    if config:
        payload["generationConfig"] = config
    tools = body.get("tools")
    if tools is not None:
        payload["tools"] = [{"functionDeclarations": function_declarations(tools)}]
    choice = body.get("tool_choice")
    if choice is not None:
        payload["toolConfig"] = {"functionCallingConfig": function_calling_config(choice)}
    check_parallel_tool_calls(body.get("parallel_tool_calls"))
    check_stream_options(body.get("stream_options"))
    return payload


def _copy(body: JSON, config: JSON, pairs: dict[str, tuple[str, type | tuple[type, ...]]]) -> None:
    for name, (target, kind) in pairs.items():
        value = number(body, name, kind)
        if value is not None:
            config[target] = value


_SAMPLING: dict[str, tuple[str, type | tuple[type, ...]]] = {
    "temperature": ("temperature", (int, float)),
    "top_p": ("topP", (int, float)),
    "top_k": ("topK", int),
    "n": ("candidateCount", int),
    "seed": ("seed", int),
    "presence_penalty": ("presencePenalty", (int, float)),
    "frequency_penalty": ("frequencyPenalty", (int, float)),
    "top_logprobs": ("logprobs", int),
}


def generation_config(body: JSON) -> JSON:
    """`generationConfig` from the sampling and output fields."""
    config: JSON = {}
    _copy(body, config, _SAMPLING)
    limit = number(body, "max_completion_tokens", int)
    if limit is None:
        limit = number(body, "max_tokens", int)
    if limit is not None:
        config["maxOutputTokens"] = limit
    stop = body.get("stop")
    if stop is not None:
        config["stopSequences"] = _stop_sequences(stop)
    logprobs = body.get("logprobs")
    if logprobs is not None:
        if not isinstance(logprobs, bool):
            raise invalid("logprobs", "must be a boolean")
        config["responseLogprobs"] = logprobs
    config.update(_response_format(body.get("response_format")))
    effort = body.get("reasoning_effort")
    if effort is not None:
        if not isinstance(effort, str) or effort not in THINKING_BUDGETS:
            allowed = ", ".join(THINKING_BUDGETS)
            raise invalid("reasoning_effort", f"must be one of {allowed}")
        config["thinkingConfig"] = {"thinkingBudget": THINKING_BUDGETS[effort]}
    return config


_TRANSLATED = frozenset(
    {
        *_SAMPLING,
        "max_tokens",
        "max_completion_tokens",
        "stop",
        "logprobs",
        "response_format",
        "reasoning_effort",
        "tools",
        "tool_choice",
    }
)


def _reject_unknown(body: JSON) -> None:
    for name, value in body.items():
        if value is None or name in _TRANSLATED or name in CONTROL_FIELDS:
            continue
        if name in NOT_SENT:
            if not isinstance(value, NOT_SENT[name]):
                raise invalid(name, "must be a boolean" if NOT_SENT[name] is bool else "must be an object")
            continue
        if name == "logit_bias" and value == {}:
            continue  # no bias: the default, which changes nothing
        raise InvalidRequest(
            f"'{name}' is not supported for Gemini models (see docs/providers.md)", param=name
        )


def _stop_sequences(stop: Any) -> list[str]:
    if isinstance(stop, str):
        return [stop]
    if isinstance(stop, list) and all(isinstance(s, str) for s in stop):
        return stop
    raise invalid("stop", "must be a string or an array of strings")


def _response_format(value: Any) -> JSON:
    if value is None:
        return {}
    kind = value.get("type") if isinstance(value, dict) else None
    if kind == "text":
        return {}
    if kind == "json_object":
        return {"responseMimeType": "application/json"}
    if kind == "json_schema":
        spec = value.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, dict) else None
        if not isinstance(schema, dict):
            raise invalid("response_format.json_schema.schema", "must be an object")
        return {"responseMimeType": "application/json", "responseJsonSchema": schema}
    raise invalid("response_format.type", "must be one of text, json_object, json_schema")


def check_parallel_tool_calls(value: Any) -> None:
    if value is not None and not isinstance(value, bool):
        raise invalid("parallel_tool_calls", "must be a boolean")


def check_stream_options(value: Any) -> None:
    if value is None:
        return
    if not isinstance(value, dict):
        raise invalid("stream_options", "must be an object")
    for key, option in value.items():
        if key != "include_usage":
            raise invalid(f"stream_options.{key}", "is not supported for Gemini models")
        if not isinstance(option, bool):
            raise invalid("stream_options.include_usage", "must be a boolean")


def function_declarations(tools: Any) -> list[JSON]:
    """OpenAI `tools` → Gemini function declarations (JSON Schema kept as is)."""
    if not isinstance(tools, list):
        raise invalid("tools", "must be an array")
    declarations = []
    for index, tool in enumerate(tools):
        where = f"tools[{index}]"
        if not isinstance(tool, dict) or tool.get("type") != "function":
            raise invalid(f"{where}.type", "must be 'function' for Gemini models")
        function = tool.get("function")
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise invalid(f"{where}.function.name", "must be a string")
        declaration: JSON = {"name": function["name"]}
        if isinstance(function.get("description"), str):
            declaration["description"] = function["description"]
        parameters = function.get("parameters")
        if parameters is not None:
            if not isinstance(parameters, dict):
                raise invalid(f"{where}.function.parameters", "must be an object")
            declaration["parametersJsonSchema"] = parameters
        declarations.append(declaration)
    return declarations


def function_calling_config(choice: Any) -> JSON:
    """OpenAI `tool_choice` → Gemini `functionCallingConfig`."""
    if isinstance(choice, str) and choice in TOOL_MODES:
        return {"mode": TOOL_MODES[choice]}
    if isinstance(choice, dict) and choice.get("type") == "function":
        function = choice.get("function")
        name = function.get("name") if isinstance(function, dict) else None
        if isinstance(name, str):
            return {"mode": "ANY", "allowedFunctionNames": [name]}
    raise InvalidRequest(
        '\'tool_choice\' must be auto, none, required or {"type": "function", "function": {"name": ...}}',
        param="tool_choice",
    )


def to_contents(messages: Any) -> tuple[list[JSON], list[JSON]]:
    """Messages → (systemInstruction parts, contents).

    System and developer messages, wherever they stand, join `systemInstruction` in order;
    tool results become `functionResponse` parts of a user turn; consecutive turns of the
    same role are merged, as Gemini expects alternating turns.
    """
    if not isinstance(messages, list) or not messages:
        raise invalid("messages", "must be a non-empty array")
    system: list[JSON] = []
    contents: list[JSON] = []
    names: dict[str, str] = {}
    for index, message in enumerate(messages):
        where = f"messages[{index}]"
        role = message_role(message, where, MESSAGE_KEYS, "gemini")
        if role in ("system", "developer"):
            system.extend(_text_parts(message.get("content"), where))
        elif role == "user":
            _append(contents, "user", _user_parts(message.get("content"), where))
        elif role == "assistant":
            _append(contents, "model", _assistant_parts(message, where, names))
        else:
            _append(contents, "user", [_tool_result(message, where, names)])
    if not contents:
        raise invalid("messages", "must contain a user message, not only system messages")
    return system, contents


def _append(contents: list[JSON], role: str, parts: list[JSON]) -> None:
    if not parts:
        return
    if contents and contents[-1]["role"] == role:
        contents[-1]["parts"].extend(parts)
    else:
        contents.append({"role": role, "parts": parts})


def _content_parts(content: Any, where: str, convert: Callable[[JSON, str], JSON]) -> list[JSON]:
    if isinstance(content, str):
        return [{"text": content}]
    if not isinstance(content, list):
        raise invalid(f"{where}.content", "must be a string or an array of parts")
    parts = []
    for index, part in enumerate(content):
        here = f"{where}.content[{index}]"
        if not isinstance(part, dict):
            raise invalid(here, "must be an object")
        parts.append(convert(part, here))
    return parts


def _text_only(part: JSON, where: str) -> JSON:
    if part.get("type") == "text" and isinstance(part.get("text"), str):
        return {"text": part["text"]}
    raise invalid(where, "must be a text part here")


def _text_parts(content: Any, where: str) -> list[JSON]:
    return _content_parts(content, where, _text_only)


def _user_parts(content: Any, where: str) -> list[JSON]:
    if content is None:
        raise invalid(f"{where}.content", "is required")
    return _content_parts(content, where, user_part)


def user_part(part: JSON, where: str) -> JSON:
    """One OpenAI content part of a user message → one Gemini part."""
    kind = part.get("type")
    if kind == "text" and isinstance(part.get("text"), str):
        return {"text": part["text"]}
    if kind == "image_url":
        image = part.get("image_url")
        url = image.get("url") if isinstance(image, dict) else None
        if not isinstance(url, str):
            raise invalid(f"{where}.image_url.url", "must be a string")
        return media_part(url, f"{where}.image_url.url")
    if kind == "input_audio":
        audio = part.get("input_audio")
        if not isinstance(audio, dict) or not isinstance(audio.get("data"), str):
            raise invalid(f"{where}.input_audio.data", "must be a string")
        audio_format = audio.get("format")
        if audio_format not in ("wav", "mp3"):
            raise invalid(f"{where}.input_audio.format", "must be wav or mp3")
        return {"inlineData": {"mimeType": f"audio/{audio_format}", "data": audio["data"]}}
    if kind == "file":
        file = part.get("file")
        data = file.get("file_data") if isinstance(file, dict) else None
        if not isinstance(data, str):
            raise invalid(
                f"{where}.file.file_data",
                "(a data URL) is required for Gemini models; file_id is not supported",
            )
        return media_part(data, f"{where}.file.file_data")
    raise invalid(f"{where}.type", f"{kind!r} is not supported for Gemini models")


def media_part(url: str, where: str) -> JSON:
    """A data URL → `inlineData`; an http(s)/gs URL → `fileData` with a MIME type guessed
    from its path. The gateway never downloads URLs itself (no SSRF through the gateway)."""
    if url.startswith("data:"):
        header, comma, data = url[5:].partition(",")
        mime, _, encoding = header.partition(";")
        if not comma or encoding != "base64" or not mime:
            raise invalid(where, "must be a base64 data URL (data:<type>;base64,...)")
        try:
            base64.b64decode(data, validate=True)
        except binascii.Error:
            raise invalid(where, "holds invalid base64 data") from None
        return {"inlineData": {"mimeType": mime, "data": data}}
    if url.startswith(("https://", "http://", "gs://")):
        guessed, _ = mimetypes.guess_type(url.split("?", 1)[0])
        if guessed is None:
            raise InvalidRequest(
                f"'{where}': cannot tell the media type of this URL from its path; send a data URL instead",
                param=where,
            )
        return {"fileData": {"mimeType": guessed, "fileUri": url}}
    raise invalid(where, "must be a data URL or an http(s) URL")


def _assistant_parts(message: JSON, where: str, names: dict[str, str]) -> list[JSON]:
    content = message.get("content")
    parts = [] if content is None else _content_parts(content, where, _assistant_text)
    # Clients often send `"content": ""` beside tool calls; Google refuses empty text parts.
    parts = [part for part in parts if part["text"]]
    refusal = message.get("refusal")
    if refusal is not None and not isinstance(refusal, str):
        raise invalid(f"{where}.refusal", "must be a string")
    if refusal:
        parts.append({"text": refusal})
    calls = message.get("tool_calls")
    if calls is None:
        return parts
    if not isinstance(calls, list):
        raise invalid(f"{where}.tool_calls", "must be an array")
    for index, call in enumerate(calls):
        parts.append(function_call_part(call, f"{where}.tool_calls[{index}]", names))
    return parts


def _assistant_text(part: JSON, where: str) -> JSON:
    if part.get("type") == "refusal" and isinstance(part.get("refusal"), str):
        return {"text": part["refusal"]}
    return _text_only(part, where)


def function_call_part(call: Any, where: str, names: dict[str, str]) -> JSON:
    """An assistant tool call → a `functionCall` part, restoring Gemini's thought signature
    from the id it was carried in."""
    function = call.get("function") if isinstance(call, dict) else None
    if not isinstance(function, dict) or not isinstance(function.get("name"), str):
        raise invalid(f"{where}.function.name", "must be a string")
    try:
        args = orjson.loads(function.get("arguments") or "{}")
    except (orjson.JSONDecodeError, TypeError):
        args = None
    if not isinstance(args, dict):
        raise invalid(f"{where}.function.arguments", "must be a JSON object for Gemini models")
    part: JSON = {"functionCall": {"name": function["name"], "args": args}}
    call_id = call.get("id")
    if isinstance(call_id, str):
        names[call_id] = function["name"]
        _, mark, signature = call_id.partition(SIGNATURE_MARK)
        if mark and signature:
            part["thoughtSignature"] = _standard_base64(signature)
    return part


def _standard_base64(urlsafe: str) -> str:
    padded = urlsafe + "=" * (-len(urlsafe) % 4)
    return padded.replace("-", "+").replace("_", "/")


def _tool_result(message: JSON, where: str, names: dict[str, str]) -> JSON:
    call_id = message.get("tool_call_id")
    if not isinstance(call_id, str) or call_id not in names:
        raise invalid(f"{where}.tool_call_id", "must name a tool call of an earlier assistant message")
    content = message.get("content")
    text = "".join(p["text"] for p in _text_parts(content if content is not None else "", where))
    return {"functionResponse": {"name": names[call_id], "response": function_response(text)}}


def function_response(text: str) -> JSON:
    """A tool result for Gemini, which wants an object: a JSON object as is, else `{"result": text}`."""
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        value = None
    return value if isinstance(value, dict) else {"result": text}


def model_path(model: str) -> str:
    """`gemini-2.5-flash` → `models/gemini-2.5-flash`; `models/…` and `tunedModels/…` stay as they are."""
    return model if "/" in model else f"models/{model}"
