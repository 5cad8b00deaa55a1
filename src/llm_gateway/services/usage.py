"""What a result cost in tokens, in the lingua franca's `Usage` shape, per operation.

Anthropic-shaped answers (the `/v1/messages` front door) count input tokens apart from
cache reads and writes; here every prompt token is counted once in `prompt_tokens`, with
the cached share in `prompt_tokens_details` (the same mapping as the chat translation).
"""

from __future__ import annotations

from typing import Any, cast

import orjson

from llm_gateway.core.context import RequestContext
from llm_gateway.core.types import JSON, Usage
from llm_gateway.providers.anthropic.response import chat_usage


def chat_completion_usage(completion: Any) -> Usage | None:
    usage = completion.get("usage") if isinstance(completion, dict) else None
    return cast(Usage, usage) if isinstance(usage, dict) else None


def embedding_usage(response: Any) -> Usage | None:
    usage = response.get("usage") if isinstance(response, dict) else None
    if not isinstance(usage, dict):
        return None
    prompt = int(usage.get("prompt_tokens") or 0)
    return {"prompt_tokens": prompt, "completion_tokens": 0, "total_tokens": prompt}


def message_usage(message: Any) -> Usage | None:
    usage = message.get("usage") if isinstance(message, dict) else None
    return chat_usage(usage) if isinstance(usage, dict) else None


def no_usage(value: Any) -> Usage | None:
    return None


class ChunkMeter:
    """Chat chunks: the usage is the last chunk's `usage` (OpenAI sends it once, at the end)."""

    __slots__ = ("_ctx",)

    def __init__(self, ctx: RequestContext) -> None:
        self._ctx = ctx

    def __call__(self, chunk: Any) -> None:
        usage = chunk.get("usage") if isinstance(chunk, dict) else None
        if usage:
            self._ctx.usage = usage


class EventMeter:
    """Anthropic events: input counts in `message_start`, running totals in `message_delta`.
    Only those two events are parsed; the rest pass by their name."""

    __slots__ = ("_ctx", "_usage")

    def __init__(self, ctx: RequestContext) -> None:
        self._ctx = ctx
        self._usage: JSON = {}

    def __call__(self, event: Any) -> None:
        name, data = event
        if name == "message_start":
            usage = (_parsed(data).get("message") or {}).get("usage")
        elif name == "message_delta":
            usage = _parsed(data).get("usage")
        else:
            return
        if isinstance(usage, dict):
            self._usage.update({k: v for k, v in usage.items() if v is not None})
            self._ctx.usage = chat_usage(self._usage)


def _parsed(data: bytes) -> JSON:
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}
