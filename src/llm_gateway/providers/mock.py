"""A deterministic, offline provider: echoes the last user message, streams it word by word.

It is the zero-config default, and with `latency_ms` / `chunk_delay_ms` it stands in for
a slow provider in demos and benchmarks. Token counts are words: good enough to exercise
accounting without a tokenizer.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import struct
import time
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any

from pydantic import Field

from llm_gateway.core.config import ProviderSettings
from llm_gateway.core.errors import InvalidRequest, UpstreamTimeout
from llm_gateway.core.types import (
    ChatChunk,
    ChatCompletion,
    ChatRequest,
    ChunkChoice,
    Message,
    Usage,
    make_usage,
    message_text,
)
from llm_gateway.providers.base import Provider

DEFAULT_REPLY = "Hello! I am the llm-gateway mock model."


class MockSettings(ProviderSettings):
    latency_ms: Annotated[float, Field(ge=0)] = 0.0
    chunk_delay_ms: Annotated[float, Field(ge=0)] = 0.0
    reply: str | None = None
    embedding_dimensions: Annotated[int, Field(ge=1, le=4096)] = 8


def mock_reply(request: ChatRequest, fixed: str | None = None) -> str:
    if fixed is not None:
        return fixed
    for message in reversed(request.get("messages") or []):
        if isinstance(message, dict) and message.get("role") == "user":
            return message_text(message) or DEFAULT_REPLY
    return DEFAULT_REPLY


def count_words(request: ChatRequest) -> int:
    return sum(len(message_text(m).split()) for m in request.get("messages") or [] if isinstance(m, dict))


def mock_embedding(text: str, dimensions: int) -> list[float]:
    """A unit-free, deterministic vector derived from the text's hash."""
    digest = b""
    counter = 0
    while len(digest) < dimensions * 4:
        digest += hashlib.sha256(f"{counter}:{text}".encode()).digest()
        counter += 1
    ints = struct.unpack(f"<{dimensions}I", digest[: dimensions * 4])
    return [round(i / 0xFFFFFFFF * 2 - 1, 6) for i in ints]


class MockProvider(Provider):
    settings_model = MockSettings
    supports_embeddings = True
    settings: MockSettings

    async def complete(
        self, request: ChatRequest, model: str, *, timeout: float | None = None
    ) -> ChatCompletion:
        await self._pause(self.settings.latency_ms, timeout)
        reply = mock_reply(request, self.settings.reply)
        return {
            "id": f"chatcmpl-mock-{uuid.uuid4().hex[:24]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": reply},
                    "finish_reason": "stop",
                    "logprobs": None,
                }
            ],
            "usage": make_usage(count_words(request), len(reply.split())),
        }

    async def stream(
        self, request: ChatRequest, model: str, *, timeout: float | None = None
    ) -> AsyncIterator[ChatChunk]:
        await self._pause(self.settings.latency_ms, timeout)
        reply = mock_reply(request, self.settings.reply)
        words = reply.split(" ")
        base = {"id": f"chatcmpl-mock-{uuid.uuid4().hex[:24]}", "created": int(time.time()), "model": model}
        yield self._chunk(base, {"role": "assistant", "content": ""}, None)
        for i, word in enumerate(words):
            if i:
                await self._pause(self.settings.chunk_delay_ms, timeout)
            yield self._chunk(base, {"content": word if i == len(words) - 1 else word + " "}, None)
        usage = make_usage(count_words(request), len(reply.split()))
        include_usage = bool((request.get("stream_options") or {}).get("include_usage"))
        yield self._chunk(base, {}, "stop")
        if include_usage:
            yield {**self._chunk(base, {}, None, usage), "choices": []}

    async def _pause(self, ms: float, timeout: float | None) -> None:
        """Wait like a slow upstream, and time out like one: a wait past the limit is a 504."""
        if not ms:
            return
        limit = timeout or self.settings.timeout
        if ms / 1000 > limit:
            await asyncio.sleep(limit)
            raise UpstreamTimeout(f"upstream provider {self.name!r} timed out", provider=self.name)
        await asyncio.sleep(ms / 1000)

    @staticmethod
    def _chunk(
        base: dict[str, Any], delta: Message, finish: str | None, usage: Usage | None = None
    ) -> ChatChunk:
        choice: ChunkChoice = {"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}
        chunk: ChatChunk = {
            "id": base["id"],
            "object": "chat.completion.chunk",
            "created": base["created"],
            "model": base["model"],
            "choices": [choice],
        }
        if usage is not None:
            chunk["usage"] = usage
        return chunk

    async def embed(
        self, request: dict[str, Any], model: str, *, timeout: float | None = None
    ) -> dict[str, Any]:
        raw = request.get("input")
        if not isinstance(raw, str | list):
            raise InvalidRequest("'input' must be a string or an array", param="input")
        inputs = [raw] if isinstance(raw, str) else raw
        size = request.get("dimensions") or self.settings.embedding_dimensions
        if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= 4096:
            raise InvalidRequest("'dimensions' must be an integer from 1 to 4096", param="dimensions")
        data = []
        for index, item in enumerate(inputs):
            vector = mock_embedding(str(item), int(size))
            embedding: Any = vector
            if request.get("encoding_format") == "base64":
                embedding = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
            data.append({"object": "embedding", "index": index, "embedding": embedding})
        tokens = sum(len(str(item).split()) for item in inputs)
        return {
            "object": "list",
            "data": data,
            "model": model,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
