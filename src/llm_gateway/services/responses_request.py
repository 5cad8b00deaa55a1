"""A Responses API request as a chat request: pure functions, no I/O.

    instructions            → a leading system message (not carried over from a previous response)
    input (string | items)  → messages: user/assistant/system turns, tool calls, tool results
    tools                   → chat functions: `function` as is, `namespace` flattened
                              (`<namespace>__<name>`), `custom` as a function with one
                              string argument `input` whose grammar rides in the description
    tool_choice, parallel_tool_calls, temperature, top_p
    text.format             → response_format        reasoning.effort → reasoning_effort
    max_output_tokens       → max_completion_tokens

`ToolIndex` remembers how each chat function name maps back (a namespaced function, a
custom tool), so answers translate back to the items the client declared. Built-in tools
(`web_search`, `file_search`, ...) need a deployment serving the Responses API natively:
`builtin_tools` names them, and translating a request that has one is an `InvalidRequest`.
A `prompt` naming a gateway template was rendered into `input` before (services/templates.py);
one still here is OpenAI's stored prompt, a 404 `template_not_found` when translated.
docs/responses.md has the whole field matrix.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import orjson

from llm_gateway.core.errors import InvalidRequest, NotFound
from llm_gateway.core.types import JSON, ChatRequest

TRANSLATED_TOOLS = frozenset({"function", "custom", "namespace"})
"""Tool types a chat model can run: everything else is a built-in tool of OpenAI's."""
KNOWN_INCLUDES = frozenset(
    {
        "file_search_call.results",
        "web_search_call.results",
        "web_search_call.action.sources",
        "message.input_image.image_url",
        "computer_call_output.output.image_url",
        "code_interpreter_call.outputs",
        "reasoning.encrypted_content",
        "message.output_text.logprobs",
    }
)
"""`include` values accepted and ignored when translated: each only adds data a chat
answer does not have (encrypted reasoning, built-in tools' results, logprobs)."""
REFUSED_FIELDS = {
    "background": "background responses",
    "conversation": "the Conversations API",
}
NAMESPACE_JOIN = "__"
CUSTOM_INPUT: JSON = {
    "type": "object",
    "properties": {"input": {"type": "string", "description": "The tool's free-form input."}},
    "required": ["input"],
    "additionalProperties": False,
}
SYSTEM_ROLES = frozenset({"system", "developer"})


@dataclass(frozen=True, slots=True)
class ToolName:
    """A chat function name's origin: a function or a custom tool, maybe in a namespace."""

    kind: str
    name: str
    namespace: str | None = None


class ToolIndex:
    """Chat function names ↔ the tools a Responses request declared."""

    def __init__(self, tools: Any) -> None:
        self.by_chat_name: dict[str, ToolName] = {}
        self.chat_tools: list[JSON] = []
        for tool in tools if isinstance(tools, list) else ():
            self._add(tool, None)

    def _add(self, tool: Any, namespace: str | None) -> None:
        if not isinstance(tool, dict):
            raise InvalidRequest("each tool must be an object", param="tools")
        kind = tool.get("type")
        if kind == "namespace" and namespace is None:
            inner = tool.get("tools")
            if not isinstance(inner, list):
                raise InvalidRequest("a namespace tool needs a 'tools' array", param="tools")
            for member in inner:
                self._add(member, _name(tool, "tools"))
            return
        if kind not in ("function", "custom"):
            raise InvalidRequest(builtin_message([str(kind)]), param="tools", code="unsupported_tool")
        name = _name(tool, "tools")
        chat_name = f"{namespace}{NAMESPACE_JOIN}{name}" if namespace else name
        self.by_chat_name[chat_name] = ToolName(kind, name, namespace)
        self.chat_tools.append({"type": "function", "function": _chat_function(tool, chat_name, kind)})

    def chat_name(self, name: str, namespace: str | None = None) -> str:
        return f"{namespace}{NAMESPACE_JOIN}{name}" if namespace else name

    def origin(self, chat_name: str) -> ToolName:
        return self.by_chat_name.get(chat_name) or ToolName("function", chat_name)


def _name(tool: JSON, param: str) -> str:
    name = tool.get("name")
    if not isinstance(name, str) or not name:
        raise InvalidRequest("each tool needs a 'name'", param=param)
    return name


def _chat_function(tool: JSON, chat_name: str, kind: str) -> JSON:
    function: JSON = {"name": chat_name}
    description = tool.get("description")
    if kind == "custom":
        function["description"] = _custom_description(description, tool.get("format"))
        function["parameters"] = CUSTOM_INPUT
        return function
    if description:
        function["description"] = description
    function["parameters"] = tool.get("parameters") or {"type": "object", "properties": {}}
    if tool.get("strict") is not None:
        function["strict"] = tool["strict"]
    return function


def _custom_description(description: Any, format_: Any) -> str:
    text = str(description or "")
    if isinstance(format_, dict) and format_.get("type") == "grammar":
        grammar = f"Pass the whole input in `input`; it must match this {format_.get('syntax')} grammar:\n"
        text = f"{text}\n\n{grammar}{format_.get('definition') or ''}".strip()
    return text or "Pass the whole input as the string `input`."


def builtin_tools(body: JSON) -> list[str]:
    """The types of the built-in tools a request declares (or forces with `tool_choice`)."""
    names: list[str] = []
    tools = body.get("tools")
    for tool in tools if isinstance(tools, list) else ():
        kind = tool.get("type") if isinstance(tool, dict) else None
        if isinstance(kind, str) and kind not in TRANSLATED_TOOLS and kind not in names:
            names.append(kind)
    choice = body.get("tool_choice")
    kind = choice.get("type") if isinstance(choice, dict) else None
    if isinstance(kind, str) and kind not in ("function", "custom", "allowed_tools") and kind not in names:
        names.append(kind)
    return names


def builtin_message(names: Sequence[str]) -> str:
    listed = ", ".join(repr(n) for n in names)
    return (
        f"tool {listed} is a built-in tool of the Responses API; this model has no deployment "
        "serving the Responses API natively, so it cannot run it"
    )


def input_items(body: JSON) -> list[JSON]:
    """The request's `input` as items: a string is one user message."""
    value = body.get("input")
    if value is None:
        return []
    if isinstance(value, str):
        return [{"type": "message", "role": "user", "content": value}]
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise InvalidRequest("'input' must be a string or an array of input items", param="input")
    return cast(list[JSON], value)


def check_request(body: JSON) -> None:
    """What every Responses request must satisfy, native or translated."""
    if not isinstance(body.get("model"), str | None):
        raise InvalidRequest("'model' must be a string", param="model")
    if body.get("stream") is not None and not isinstance(body.get("stream"), bool):
        raise InvalidRequest("'stream' must be a boolean", param="stream")
    previous = body.get("previous_response_id")
    if previous is not None and not isinstance(previous, str):
        raise InvalidRequest("'previous_response_id' must be a string", param="previous_response_id")
    if body.get("store") is not None and not isinstance(body.get("store"), bool):
        raise InvalidRequest("'store' must be a boolean", param="store")
    input_items(body)


def to_chat_request(body: JSON, history: Iterable[JSON] = (), tools: ToolIndex | None = None) -> ChatRequest:
    """The chat request for a Responses body whose conversation so far is `history`."""
    for field, what in REFUSED_FIELDS.items():
        if body.get(field):
            raise InvalidRequest(
                f"'{field}': {what} need a deployment serving the Responses API natively", param=field
            )
    _check_prompt(body.get("prompt"))
    builtins = builtin_tools(body)
    if builtins:
        raise InvalidRequest(builtin_message(builtins), param="tools", code="unsupported_tool")
    _check_include(body.get("include"))
    index = tools or ToolIndex(body.get("tools"))
    messages: list[JSON] = []
    instructions = body.get("instructions")
    if isinstance(instructions, str) and instructions:
        messages.append({"role": "system", "content": instructions})
    elif instructions is not None and not isinstance(instructions, str):
        messages.extend(to_messages(instructions if isinstance(instructions, list) else [], index))
    messages.extend(to_messages([*history, *input_items(body)], index))
    request: JSON = {"model": body.get("model"), "messages": messages}
    for field in ("temperature", "top_p", "parallel_tool_calls"):
        if body.get(field) is not None:
            request[field] = body[field]
    if body.get("max_output_tokens") is not None:
        request["max_completion_tokens"] = body["max_output_tokens"]
    if index.chat_tools:
        request["tools"] = index.chat_tools
    request.update(_tool_choice(body.get("tool_choice"), index))
    response_format = _response_format(body.get("text"))
    if response_format is not None:
        request["response_format"] = response_format
    reasoning = body.get("reasoning")
    if isinstance(reasoning, dict) and reasoning.get("effort") is not None:
        request["reasoning_effort"] = reasoning["effort"]
    if body.get("stream"):
        request["stream"] = True
        request["stream_options"] = {"include_usage": True}
    return cast(ChatRequest, request)


def _check_prompt(prompt: Any) -> None:
    """A `prompt` still here names no gateway template (services/templates.py renders
    those): only OpenAI, serving natively, could resolve it."""
    if not prompt:
        return
    name = prompt.get("id") if isinstance(prompt, dict) else None
    raise NotFound(
        f"no prompt template named {name!r}; OpenAI's stored prompts need a deployment "
        "serving the Responses API natively",
        param="prompt.id",
        code="template_not_found",
    )


def _check_include(include: Any) -> None:
    if include is None:
        return
    if not isinstance(include, list):
        raise InvalidRequest("'include' must be an array", param="include")
    for value in include:
        if value not in KNOWN_INCLUDES:
            raise InvalidRequest(f"'include': unknown value {value!r}", param="include")


def _tool_choice(choice: Any, index: ToolIndex) -> JSON:
    if choice is None:
        return {}
    if choice in ("auto", "none", "required"):
        return {"tool_choice": choice}
    if not isinstance(choice, dict):
        raise InvalidRequest("'tool_choice' must be auto, none, required or an object", param="tool_choice")
    kind = choice.get("type")
    if kind in ("function", "custom"):
        name = index.chat_name(str(choice.get("name") or ""), choice.get("namespace"))
        return {"tool_choice": {"type": "function", "function": {"name": name}}}
    if kind == "allowed_tools":
        allowed = {
            index.chat_name(str(t.get("name") or ""), t.get("namespace"))
            for t in choice.get("tools") or ()
            if isinstance(t, dict)
        }
        tools = [t for t in index.chat_tools if t["function"]["name"] in allowed]
        mode = choice.get("mode") if choice.get("mode") in ("auto", "required") else "auto"
        return {"tool_choice": mode, "tools": tools} if tools else {"tool_choice": "none"}
    raise InvalidRequest(builtin_message([str(kind)]), param="tool_choice", code="unsupported_tool")


def _response_format(text: Any) -> JSON | None:
    format_ = text.get("format") if isinstance(text, dict) else None
    if not isinstance(format_, dict) or format_.get("type") in (None, "text"):
        return None
    if format_.get("type") == "json_object":
        return {"type": "json_object"}
    if format_.get("type") == "json_schema":
        spec = {
            k: format_[k] for k in ("name", "schema", "description", "strict") if format_.get(k) is not None
        }
        return {"type": "json_schema", "json_schema": spec}
    raise InvalidRequest("'text.format.type' must be text, json_object or json_schema", param="text.format")


def to_messages(items: Iterable[JSON], index: ToolIndex) -> list[JSON]:
    """Input items (and stored output items) as chat messages; consecutive tool calls join
    one assistant message, as a chat model made them."""
    messages: list[JSON] = []
    for item in items:
        kind = item.get("type") or ("message" if "role" in item else None)
        if kind == "message":
            messages.append(_message(item))
        elif kind in ("function_call", "custom_tool_call"):
            _append_call(messages, _tool_call(item, index))
        elif kind in ("function_call_output", "custom_tool_call_output"):
            messages.append(
                {
                    "role": "tool",
                    "tool_call_id": item.get("call_id"),
                    "content": _output_text(item.get("output")),
                }
            )
        elif kind == "reasoning":
            continue  # a chat model cannot take reasoning back; encrypted reasoning is the upstream's
        else:
            raise InvalidRequest(
                f"input item type {kind!r} needs a deployment serving the Responses API natively",
                param="input",
            )
    return messages


def _message(item: JSON) -> JSON:
    role = item.get("role")
    if role not in ("user", "assistant", "system", "developer"):
        raise InvalidRequest(
            f"message role {role!r} is not one of user, assistant, system, developer", param="input"
        )
    content = item.get("content")
    if isinstance(content, str):
        return {"role": "system" if role in SYSTEM_ROLES else role, "content": content}
    if not isinstance(content, list):
        raise InvalidRequest("a message's 'content' must be a string or an array of parts", param="input")
    parts = [_part(part) for part in content]
    if role != "user":  # a system or assistant turn is text
        texts = [str(p.get("text") or "") for p in parts if p.get("type") == "text"]
        return {"role": "system" if role in SYSTEM_ROLES else role, "content": "\n\n".join(texts)}
    if len(parts) == 1 and parts[0].get("type") == "text":
        return {"role": "user", "content": parts[0]["text"]}
    return {"role": "user", "content": parts}


def _part(part: Any) -> JSON:
    kind = part.get("type") if isinstance(part, dict) else None
    if kind in ("input_text", "output_text", "text"):
        return {"type": "text", "text": part.get("text") or ""}
    if kind == "refusal":
        return {"type": "text", "text": part.get("refusal") or ""}
    if kind == "input_image":
        if not part.get("image_url"):
            raise InvalidRequest(
                "input_image by 'file_id' needs OpenAI's file store: send 'image_url'", param="input"
            )
        image: JSON = {"url": part["image_url"]}
        if part.get("detail"):
            image["detail"] = part["detail"]
        return {"type": "image_url", "image_url": image}
    if kind == "input_file" and part.get("file_data"):
        file: JSON = {"file_data": part["file_data"]}
        if part.get("filename"):
            file["filename"] = part["filename"]
        return {"type": "file", "file": file}
    raise InvalidRequest(f"content part type {kind!r} cannot be translated to a chat message", param="input")


def _tool_call(item: JSON, index: ToolIndex) -> JSON:
    name = index.chat_name(str(item.get("name") or ""), item.get("namespace"))
    if item.get("type") == "custom_tool_call":
        arguments = orjson.dumps({"input": item.get("input") or ""}).decode()
    else:
        arguments = str(item["arguments"]) if isinstance(item.get("arguments"), str) else "{}"
    return {"id": item.get("call_id"), "type": "function", "function": {"name": name, "arguments": arguments}}


def _append_call(messages: list[JSON], call: JSON) -> None:
    last = messages[-1] if messages else None
    if last is not None and last.get("role") == "assistant":
        last.setdefault("tool_calls", []).append(call)
        if not last.get("content"):
            last["content"] = None
        return
    messages.append({"role": "assistant", "content": None, "tool_calls": [call]})


def _output_text(output: Any) -> str:
    """A tool's output: a string, or parts whose text is joined (a chat tool result is text)."""
    if isinstance(output, str):
        return output
    if isinstance(output, list):
        return "".join(str(p.get("text") or "") for p in output if isinstance(p, dict))
    return "" if output is None else orjson.dumps(output).decode()
