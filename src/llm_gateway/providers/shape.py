"""Cheap checks that an upstream's answer has the shape its translator and the client rely on.

Valid JSON of the wrong shape (`[1,2,3]`, `null`, `{"choices":[null]}`, usage counts that are
not numbers) is the upstream's failure, like garbage bytes: a retryable 502 that routing
counts against the deployment, never a 500 or a 200 that breaks the client's SDK. These are
a few `isinstance` checks per answer or chunk, not a model per chunk.

Native translators (Anthropic, Gemini, Bedrock) index into what they are given; what such a
translator raises on a wrong shape (`TRANSLATION_ERRORS`) is mapped the same way by their
providers.
"""

from __future__ import annotations

from typing import Any

from llm_gateway.providers.transport import malformed

TRANSLATION_ERRORS = (KeyError, IndexError, TypeError, AttributeError, ValueError)
"""What a translator raises when an upstream answer is not the shape it reads."""

USAGE_COUNTS = ("prompt_tokens", "completion_tokens", "total_tokens")


def _usage_ok(usage: Any) -> bool:
    if usage is None:
        return True
    if type(usage) is not dict:
        return False
    for name in USAGE_COUNTS:
        count = usage.get(name)
        if count is not None and (type(count) is not int or count < 0):
            return False
    return True


def chat_completion(data: Any, provider: str) -> Any:
    """An OpenAI chat completion: `choices`, a list of objects each with a `message` object."""
    choices = data.get("choices") if type(data) is dict else None
    if (
        type(choices) is not list
        or not all(type(c) is dict and type(c.get("message")) is dict for c in choices)
        or not _usage_ok(data.get("usage"))
    ):
        raise malformed(provider, "returned a chat completion of the wrong shape")
    return data


def chat_chunk(data: Any, provider: str) -> Any:
    """An OpenAI stream chunk: an object whose `choices` (if any) are objects, usage numbers."""
    if type(data) is not dict:
        raise malformed(provider, "sent a stream chunk that is not an object")
    choices = data.get("choices")
    if choices is not None and (type(choices) is not list or not all(type(c) is dict for c in choices)):
        raise malformed(provider, "sent a stream chunk of the wrong shape")
    usage = data.get("usage")
    if usage is not None and not _usage_ok(usage):
        raise malformed(provider, "sent usage that is not a count of tokens")
    return data


def embeddings(data: Any, provider: str) -> Any:
    """An OpenAI embeddings list: `data` objects, each a list of numbers or a base64 string."""
    items = data.get("data") if type(data) is dict else None
    if type(items) is not list or not all(
        type(item) is dict and _vector_ok(item.get("embedding")) for item in items
    ):
        raise malformed(provider, "returned embeddings of the wrong shape")
    if not _usage_ok(data.get("usage")):
        raise malformed(provider, "returned usage that is not a count of tokens")
    return data


def _vector_ok(vector: Any) -> bool:
    if type(vector) is str:
        return True
    if type(vector) is not list:
        return False
    for value in vector:
        kind = type(value)
        if kind is not float and kind is not int:
            return False
    return True
