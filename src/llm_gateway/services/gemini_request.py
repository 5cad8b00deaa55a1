"""The Gemini front door's requests → the gateway's own: pure functions, no I/O.

A `generateContent` body (contents of parts, `systemInstruction`, `tools`, `toolConfig`,
`generationConfig`) becomes an OpenAI chat request, the pipeline's lingua franca, so any
configured model serves it; `embedContent` / `batchEmbedContents` become an OpenAI
embeddings request. What cannot be carried across without changing the answer (built-in
tools, cached content, audio output, non-image media) is a 400 naming the field.
Knowingly ignored, as documented in docs/agents.md: `safetySettings` (no other provider
has Google's categories), `labels`, `mediaResolution`, an embedding's `taskType` and `title`.
"""

from __future__ import annotations

from typing import Any

import orjson

from llm_gateway.core.errors import InvalidRequest
from llm_gateway.core.types import JSON

GENERATE_FIELDS = frozenset(
    {"contents", "systemInstruction", "tools", "toolConfig", "generationConfig", "model"}
)
IGNORED_FIELDS = frozenset({"safetySettings", "labels"})
CONFIG_FIELDS = {
    "temperature": "temperature",
    "topP": "top_p",
    "topK": "top_k",
    "maxOutputTokens": "max_tokens",
    "candidateCount": "n",
    "presencePenalty": "presence_penalty",
    "frequencyPenalty": "frequency_penalty",
    "seed": "seed",
}
HANDLED_CONFIG = frozenset({"mediaResolution", "responseLogprobs", "logprobs", "thinkingConfig",
                            "stopSequences", "responseMimeType", "responseSchema", "responseJsonSchema",
                            "responseModalities"})  # fmt: skip
"""generationConfig keys translated below, not one to one (`mediaResolution` and
`thinkingConfig` checked, not sent)."""
TOOL_MODES = {"AUTO": "auto", "NONE": "none", "ANY": "required", "VALIDATED": "auto"}
SCHEMA_KEYS = frozenset({"propertyOrdering"})
"""Gemini Schema keys with no JSON Schema meaning (a hint to Gemini's decoder), dropped."""
SIGNATURE_ONLY = frozenset({"thoughtSignature"})
ROLES = {"user": "user", "model": "assistant", "function": "user"}


def model_name(model: str) -> str:
    """The model named in the URL (`models/{model}:method`), without the `models/` prefix."""
    return model.removeprefix("models/")


def to_chat_request(body: JSON, model: str, *, stream: bool) -> JSON:
    """A `generateContent` body → an OpenAI chat request for `model`."""
    unknown = sorted(set(body) - GENERATE_FIELDS - IGNORED_FIELDS)
    if unknown:
        raise InvalidRequest(f"{unknown[0]}: not supported by this gateway's Gemini API", param=unknown[0])
    messages = system_messages(body.get("systemInstruction")) + to_messages(body.get("contents"))
    if not messages:
        raise InvalidRequest("contents: must not be empty", param="contents")
    request: JSON = {"model": model, "messages": messages}
    request.update(generation_config(_object(body.get("generationConfig"), "generationConfig")))
    if body.get("tools") is not None:
        request["tools"] = function_tools(body["tools"])
    if body.get("toolConfig") is not None:
        _apply_tool_config(request, _object(body["toolConfig"], "toolConfig"))
    if stream:
        request["stream"] = True
        request["stream_options"] = {"include_usage": True}
    return request


def _object(value: Any, where: str) -> JSON:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidRequest(f"{where}: must be an object", param=where)
    return value


def _list(value: Any, where: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise InvalidRequest(f"{where}: must be an array", param=where)
    return value


def system_messages(instruction: Any) -> list[JSON]:
    """`systemInstruction` (a Content, or a bare string) → one system message."""
    if instruction is None:
        return []
    if isinstance(instruction, str):
        return [{"role": "system", "content": instruction}]
    parts = _list(_object(instruction, "systemInstruction").get("parts"), "systemInstruction.parts")
    texts = []
    for index, part in enumerate(parts):
        where = f"systemInstruction.parts[{index}]"
        if not isinstance(part, dict) or not isinstance(part.get("text"), str):
            raise InvalidRequest(
                f"{where}: only text parts are supported in a system instruction", param=where
            )
        texts.append(part["text"])
    return [{"role": "system", "content": "\n".join(texts)}] if texts else []


def to_messages(contents: Any) -> list[JSON]:
    """`contents` → chat messages: a `functionCall` becomes a tool call (its `id`, or one made
    from its place), a `functionResponse` the tool message answering the call of its `id`,
    else the oldest unanswered call of its name."""
    if isinstance(contents, dict | str):
        contents = [contents]
    messages: list[JSON] = []
    pending: dict[str, list[str]] = {}
    for turn, content in enumerate(_list(contents, "contents")):
        where = f"contents[{turn}]"
        if isinstance(content, str):
            content = {"role": "user", "parts": [{"text": content}]}
        content = _object(content, where)
        role = ROLES.get(str(content.get("role") or "user"))
        if role is None:
            raise InvalidRequest(f"{where}.role: must be 'user' or 'model'", param=f"{where}.role")
        parts = _list(content.get("parts"), f"{where}.parts")
        messages.extend(_turn(parts, role, where, turn, pending))
    return messages


def _turn(parts: list[Any], role: str, where: str, turn: int, pending: dict[str, list[str]]) -> list[JSON]:
    content: list[JSON] = []
    calls: list[JSON] = []
    results: list[JSON] = []
    for index, part in enumerate(parts):
        at = f"{where}.parts[{index}]"
        part = _object(part, at)
        if part.get("thought") or not set(part) - SIGNATURE_ONLY:
            continue  # the model's own earlier reasoning (or just its signature): not replayed
        if "functionCall" in part:
            calls.append(_tool_call(_object(part["functionCall"], at), f"call_{turn}_{index}", pending))
        elif "functionResponse" in part:
            results.append(_tool_result(_object(part["functionResponse"], at), at, pending))
        else:
            content.append(content_part(part, at))
    messages: list[JSON] = list(results)
    if role == "assistant":
        if content or calls:
            text = "".join(str(p.get("text", "")) for p in content if p.get("type") == "text")
            message: JSON = {"role": "assistant", "content": text or None}
            if calls:
                message["tool_calls"] = calls
            messages.append(message)
    elif content:
        messages.append({"role": "user", "content": content})
    return messages


def _tool_call(call: JSON, default_id: str, pending: dict[str, list[str]]) -> JSON:
    name = str(call.get("name") or "")
    call_id = str(call.get("id") or default_id)
    pending.setdefault(name, []).append(call_id)
    arguments = orjson.dumps(call.get("args") or {}).decode()
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def _tool_result(result: JSON, where: str, pending: dict[str, list[str]]) -> JSON:
    name = str(result.get("name") or "")
    waiting = pending.get(name) or []
    call_id = result.get("id")
    if isinstance(call_id, str) and call_id in waiting:
        waiting.remove(call_id)
    elif not call_id:
        if not waiting:
            raise InvalidRequest(
                f"{where}.functionResponse: no earlier functionCall named {name!r}", param=where
            )
        call_id = waiting.pop(0)
    response = result.get("response")
    return {"role": "tool", "tool_call_id": str(call_id), "content": orjson.dumps(response or {}).decode()}


def content_part(part: JSON, where: str) -> JSON:
    """A text or image part → an OpenAI content part; other media is a 400."""
    if isinstance(part.get("text"), str):
        return {"type": "text", "text": part["text"]}
    media = part.get("inlineData") or part.get("fileData")
    if isinstance(media, dict):
        mime = str(media.get("mimeType") or "")
        if not mime.startswith("image/"):
            raise InvalidRequest(
                f"{where}: {mime or 'untyped'} media is not supported; only images", param=where
            )
        url = media.get("fileUri") if "fileData" in part else f"data:{mime};base64,{media.get('data', '')}"
        return {"type": "image_url", "image_url": {"url": str(url)}}
    kinds = sorted(k for k in part if k not in ("thoughtSignature", "videoMetadata"))
    raise InvalidRequest(f"{where}: part {kinds[0] if kinds else '{}'!s} is not supported", param=where)


def generation_config(config: JSON) -> JSON:
    """generationConfig → chat request fields.

    `thinkingConfig` (`thinkingBudget`, `thinkingLevel`) leaves each model's own reasoning
    default: the Gemini CLI sends it to every model it takes for a thinking Gemini (an
    alias such as `gemini-2.5-pro` in front of any model), and a model that does not reason
    refuses `reasoning_effort` outright. Its `includeThoughts` decides whether reasoning
    comes back (api/gemini.py)."""
    unknown = sorted(set(config) - set(CONFIG_FIELDS) - HANDLED_CONFIG)
    if unknown:
        where = f"generationConfig.{unknown[0]}"
        raise InvalidRequest(f"{where}: not supported by this gateway's Gemini API", param=where)
    fields = {CONFIG_FIELDS[k]: v for k, v in config.items() if k in CONFIG_FIELDS and v is not None}
    if config.get("stopSequences"):
        fields["stop"] = config["stopSequences"]
    modalities = [str(m).upper() for m in _list(config.get("responseModalities"), "responseModalities")]
    if any(m != "TEXT" for m in modalities):
        raise InvalidRequest(
            "generationConfig.responseModalities: only TEXT is supported", param="responseModalities"
        )
    if config.get("responseLogprobs"):
        fields["logprobs"] = True
        if isinstance(config.get("logprobs"), int):
            fields["top_logprobs"] = config["logprobs"]
    _object(config.get("thinkingConfig"), "thinkingConfig")  # checked, not sent (see the docstring)
    response_format = to_response_format(config)
    if response_format is not None:
        fields["response_format"] = response_format
    return fields


def to_response_format(config: JSON) -> JSON | None:
    mime = config.get("responseMimeType")
    schema = config.get("responseJsonSchema")
    if schema is None and config.get("responseSchema") is not None:
        schema = json_schema(config["responseSchema"])
    if schema is not None:
        return {"type": "json_schema", "json_schema": {"name": "response", "schema": schema}}
    if mime in (None, "", "text/plain"):
        return None
    if mime == "application/json":
        return {"type": "json_object"}
    raise InvalidRequest(
        f"generationConfig.responseMimeType: {mime!r} is not supported", param="responseMimeType"
    )


def json_schema(schema: Any) -> Any:
    """A Gemini (OpenAPI-subset) Schema → JSON Schema: lower-case types, `nullable` as a
    null type, nested schemas converted alike."""
    if isinstance(schema, list):
        return [json_schema(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out: JSON = {}
    for key, value in schema.items():
        if key in SCHEMA_KEYS or key == "nullable":
            continue
        if key == "type" and isinstance(value, str):
            out["type"] = value.lower()
        elif key == "properties" and isinstance(value, dict):
            out[key] = {name: json_schema(sub) for name, sub in value.items()}
        elif key in ("items", "anyOf", "oneOf", "allOf", "not", "additionalProperties"):
            out[key] = json_schema(value)
        else:
            out[key] = value
    if schema.get("nullable") is True and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    return out


def function_tools(tools: Any) -> list[JSON]:
    """`tools[].functionDeclarations` → OpenAI function tools; a built-in tool is a 400."""
    out: list[JSON] = []
    for index, tool in enumerate(_list(tools, "tools")):
        tool = _object(tool, f"tools[{index}]")
        builtin = sorted(k for k in tool if k != "functionDeclarations")
        if builtin:
            where = f"tools[{index}].{builtin[0]}"
            raise InvalidRequest(f"{where}: built-in Gemini tools cannot run on this gateway", param=where)
        for declaration in _list(tool.get("functionDeclarations"), f"tools[{index}].functionDeclarations"):
            out.append(_function(_object(declaration, f"tools[{index}]")))
    return out


def _function(declaration: JSON) -> JSON:
    function: JSON = {"name": str(declaration.get("name") or "")}
    if declaration.get("description"):
        function["description"] = declaration["description"]
    if declaration.get("parametersJsonSchema") is not None:
        function["parameters"] = declaration["parametersJsonSchema"]
    elif declaration.get("parameters") is not None:
        function["parameters"] = json_schema(declaration["parameters"])
    else:
        function["parameters"] = {"type": "object", "properties": {}}
    return {"type": "function", "function": function}


def _apply_tool_config(request: JSON, config: JSON) -> None:
    """functionCallingConfig → tool_choice; `allowedFunctionNames` narrows the tools sent
    (one name under ANY: that function is forced)."""
    calling = _object(config.get("functionCallingConfig"), "toolConfig.functionCallingConfig")
    mode = str(calling.get("mode") or "AUTO").upper()
    if mode not in TOOL_MODES:
        raise InvalidRequest(f"toolConfig.functionCallingConfig.mode: unknown mode {mode!r}", param="mode")
    request["tool_choice"] = TOOL_MODES[mode]
    allowed = calling.get("allowedFunctionNames")
    if isinstance(allowed, list) and allowed and request.get("tools"):
        request["tools"] = [t for t in request["tools"] if t["function"]["name"] in allowed]
        if mode == "ANY" and len(allowed) == 1:
            request["tool_choice"] = {"type": "function", "function": {"name": str(allowed[0])}}


def count_request(body: JSON, model: str) -> JSON:
    """A `countTokens` body (`contents`, or a whole `generateContentRequest`) → a chat request."""
    inner = body.get("generateContentRequest")
    if isinstance(inner, dict):
        return to_chat_request({k: v for k, v in inner.items() if k != "model"}, model, stream=False)
    return to_chat_request({k: v for k, v in body.items() if k == "contents"}, model, stream=False)


def embedding_text(content: Any, where: str) -> str:
    parts = _list(_object(content, where).get("parts"), f"{where}.parts")
    texts = []
    for index, part in enumerate(parts):
        if not isinstance(part, dict) or not isinstance(part.get("text"), str):
            at = f"{where}.parts[{index}]"
            raise InvalidRequest(f"{at}: only text can be embedded here", param=at)
        texts.append(part["text"])
    if not texts:
        raise InvalidRequest(f"{where}.parts: must not be empty", param=where)
    return "\n".join(texts)


def embeddings_request(requests: list[JSON], model: str) -> JSON:
    """One or more `EmbedContentRequest`s → one OpenAI embeddings request; every request
    must name the URL's model and ask for the same `outputDimensionality`."""
    if not requests:
        raise InvalidRequest("requests: must not be empty", param="requests")
    inputs: list[str] = []
    dimensions: set[Any] = set()
    for index, item in enumerate(requests):
        where = f"requests[{index}]"
        item = _object(item, where)
        named = item.get("model")
        if isinstance(named, str) and model_name(named) != model:
            raise InvalidRequest(f"{where}.model: must be the model in the URL, {model!r}", param=where)
        inputs.append(embedding_text(item.get("content"), f"{where}.content"))
        dimensions.add(item.get("outputDimensionality"))
    if len(dimensions) > 1:
        raise InvalidRequest(
            "requests: outputDimensionality must be the same in every request", param="requests"
        )
    body: JSON = {"model": model, "input": inputs}
    size = dimensions.pop()
    if size is not None:
        body["dimensions"] = size
    return body
