"""Provider-neutral wire types. The lingua franca is OpenAI's chat format.

These are ``TypedDict``s over plain dicts parsed once by orjson: requests keep every
field a client sent (known or not), so they pass through to OpenAI-compatible upstreams
untouched. Pydantic is reserved for config and admin models.
"""

from __future__ import annotations

from typing import Any, Literal, NotRequired, TypedDict

JSON = dict[str, Any]


class Usage(TypedDict, total=False):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    prompt_tokens_details: dict[str, Any]
    completion_tokens_details: dict[str, Any]


class ToolCallFunction(TypedDict, total=False):
    name: str
    arguments: str


class ToolCall(TypedDict, total=False):
    index: int
    id: str
    type: Literal["function"]
    function: ToolCallFunction


class Message(TypedDict, total=False):
    role: str
    content: str | list[JSON] | None
    name: str
    tool_calls: list[ToolCall]
    tool_call_id: str


class ChatRequest(TypedDict, total=False):
    """A chat request as the client sent it. Unknown keys are kept and passed on."""

    model: str
    messages: list[Message]
    stream: bool
    max_tokens: int
    max_completion_tokens: int
    temperature: float
    tools: list[JSON]
    tool_choice: str | JSON
    stop: str | list[str]
    stream_options: JSON


class Choice(TypedDict):
    index: int
    message: Message
    finish_reason: str | None
    logprobs: NotRequired[JSON | None]


class ChatCompletion(TypedDict):
    id: str
    object: Literal["chat.completion"]
    created: int
    model: str
    choices: list[Choice]
    usage: NotRequired[Usage]


class ChunkChoice(TypedDict):
    index: int
    delta: Message
    finish_reason: str | None
    logprobs: NotRequired[JSON | None]


class ChatChunk(TypedDict):
    id: str
    object: Literal["chat.completion.chunk"]
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: NotRequired[Usage | None]


def make_usage(prompt_tokens: int, completion_tokens: int) -> Usage:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def message_text(message: Message) -> str:
    """The plain text of a message, joining text parts of multi-part content."""
    content = message.get("content")
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "".join(str(part.get("text", "")) for part in content if part.get("type") == "text")
