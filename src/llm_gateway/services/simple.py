"""The SDK-free `/api/chat` shape, translated to and from the chat lingua franca.

Request: `{"message": "...", "model"?, "system"?, "history"?, "temperature"?, "max_tokens"?, "stream"?}`,
or `{"template": "name", "template_version"?, "variables"?: {...}, "message"?, ...}` to render a
prompt template (services/templates.py; the message, if any, follows the template's).
Answer: `{"reply", "model", "provider", "finish_reason", "usage"}`; streamed, text deltas
`{"delta": "..."}` then one final `{"done": true, ...answer}` event.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from llm_gateway.core.errors import InvalidRequest
from llm_gateway.core.types import ChatChunk, ChatCompletion, ChatRequest, Message, Usage

_OPTIONAL_NUMBERS = {"temperature": ((int, float), "a number"), "max_tokens": ((int,), "an integer")}
_ROLES = ("system", "developer", "user", "assistant")
_FIELDS = (
    "message",
    "model",
    "system",
    "history",
    "temperature",
    "max_tokens",
    "stream",
    "fallbacks",
    "template",
    "template_version",
    "variables",
)


def to_chat_request(body: dict[str, Any]) -> ChatRequest:
    """Validate the simple body and build a chat request; any field it does not know is a 400."""
    for name in body:
        if name not in _FIELDS:
            raise InvalidRequest(
                f"unknown field {name!r}; /api/chat accepts: {', '.join(_FIELDS)}", param=name
            )
    message = body.get("message")
    template = body.get("template")
    if (message is not None or template is None) and (not isinstance(message, str) or not message):
        raise InvalidRequest("'message' must be a non-empty string", param="message")
    messages: list[Message] = []
    system = body.get("system")
    if system is not None:
        if not isinstance(system, str):
            raise InvalidRequest("'system' must be a string", param="system")
        messages.append({"role": "system", "content": system})
    messages.extend(_history(body.get("history")))
    if message is not None:
        messages.append({"role": "user", "content": message})
    request: ChatRequest = {"messages": messages}
    if template is not None:
        request["prompt"] = _prompt(template, body)  # type: ignore[typeddict-unknown-key]
    model = body.get("model")
    if model is not None:
        if not isinstance(model, str):
            raise InvalidRequest("'model' must be a string", param="model")
        request["model"] = model
    for name, (types, kind) in _OPTIONAL_NUMBERS.items():
        value = body.get(name)
        if value is not None:
            if isinstance(value, bool) or not isinstance(value, types):
                raise InvalidRequest(f"'{name}' must be {kind}", param=name)
            request[name] = value  # type: ignore[literal-required]
    if "fallbacks" in body:
        request["fallbacks"] = body["fallbacks"]  # type: ignore[typeddict-unknown-key]  # checked by ChatService
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise InvalidRequest("'stream' must be a boolean", param="stream")
    if stream:
        request["stream"] = True
        request["stream_options"] = {"include_usage": True}
    return request


def _prompt(template: Any, body: dict[str, Any]) -> dict[str, Any]:
    """The chat request's `prompt` field (rendered by the pipeline) for `template`."""
    if not isinstance(template, str) or not template:
        raise InvalidRequest("'template' must be a non-empty string", param="template")
    prompt: dict[str, Any] = {"id": template, "variables": body.get("variables", {})}
    if "template_version" in body:
        prompt["version"] = body["template_version"]
    return prompt


def _history(history: Any) -> list[Message]:
    if history is None:
        return []
    if not isinstance(history, list):
        raise InvalidRequest("'history' must be an array of messages", param="history")
    messages: list[Message] = []
    for index, item in enumerate(history):
        if (
            not isinstance(item, dict)
            or item.get("role") not in _ROLES
            or not isinstance(item.get("content"), str)
        ):
            raise InvalidRequest(
                f'\'history[{index}]\' must be {{"role": {"|".join(_ROLES)}, "content": string}}',
                param=f"history[{index}]",
            )
        messages.append({"role": item["role"], "content": item["content"]})
    return messages


def simple_answer(completion: ChatCompletion, provider: str) -> dict[str, Any]:
    choice = completion["choices"][0] if completion.get("choices") else None
    content = choice["message"].get("content") if choice else None
    return {
        "reply": content if isinstance(content, str) else "",
        "model": completion.get("model", ""),
        "provider": provider,
        "finish_reason": choice.get("finish_reason") if choice else None,
        "usage": _usage(completion.get("usage")),
    }


def _usage(usage: Usage | None) -> dict[str, int]:
    usage = usage or {}
    prompt = int(usage.get("prompt_tokens") or 0)
    completion = int(usage.get("completion_tokens") or 0)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


async def simple_stream(chunks: AsyncIterator[ChatChunk], provider: str) -> AsyncIterator[dict[str, Any]]:
    """Text deltas, then a final event with the whole reply, finish reason and usage."""
    parts: list[str] = []
    model, finish, usage = "", None, None
    async for chunk in chunks:
        model = chunk.get("model") or model
        if chunk.get("usage"):
            usage = chunk["usage"]
        for choice in chunk.get("choices") or []:
            if choice.get("index", 0) != 0:
                continue
            text = (choice.get("delta") or {}).get("content")
            if isinstance(text, str) and text:
                parts.append(text)
                yield {"delta": text}
            finish = choice.get("finish_reason") or finish
    yield {
        "done": True,
        "reply": "".join(parts),
        "model": model,
        "provider": provider,
        "finish_reason": finish,
        "usage": _usage(usage),
    }
