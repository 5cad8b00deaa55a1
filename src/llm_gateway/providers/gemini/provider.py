"""Google AI Studio (Generative Language API v1beta): chat, streaming and embeddings.

The translation lives in pure modules beside this one: `request` (OpenAI → Gemini),
`response` (Gemini → OpenAI), `stream` (the SSE state machine), `embeddings` and `errors`.
This module holds the settings and the I/O.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import aclosing
from typing import Any, cast

import orjson
from pydantic import Field, SecretStr

from llm_gateway.core.capabilities import Capability
from llm_gateway.core.config import ProviderSettings
from llm_gateway.core.errors import ProviderError
from llm_gateway.core.secrets import SecretHeaders, SecretUrl
from llm_gateway.core.types import JSON, ChatChunk, ChatCompletion, ChatRequest
from llm_gateway.providers import shape
from llm_gateway.providers.base import Provider
from llm_gateway.providers.gemini.embeddings import embedding_texts, from_embed_response, to_embed_request
from llm_gateway.providers.gemini.errors import gemini_error
from llm_gateway.providers.gemini.request import model_path, to_gemini
from llm_gateway.providers.gemini.response import from_gemini
from llm_gateway.providers.gemini.stream import GeminiStream
from llm_gateway.providers.shape import TRANSLATION_ERRORS
from llm_gateway.providers.transport import malformed, parse_json_body
from llm_gateway.providers.upstream import json_object, post_json, sse_stream


class GeminiSettings(ProviderSettings):
    base_url: SecretUrl = SecretUrl("https://generativelanguage.googleapis.com/v1beta")
    api_key: SecretStr
    headers: SecretHeaders = Field(default_factory=SecretHeaders)


def _max_calls(request: ChatRequest) -> int | None:
    """With `parallel_tool_calls: false` only the first call of an answer is kept."""
    return 1 if request.get("parallel_tool_calls") is False else None


class GeminiProvider(Provider):
    settings_model = GeminiSettings
    capabilities = frozenset({Capability.CHAT, Capability.EMBEDDINGS})
    settings: GeminiSettings

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._base = self.settings.base_url.get_secret_value().rstrip("/")
        self._api_key = self.settings.api_key.get_secret_value()
        self._headers = {
            "content-type": "application/json",
            **self.settings.headers,
            "x-goog-api-key": self._api_key,
        }

    def url(self, model: str, method: str) -> str:
        return f"{self._base}/{model_path(model)}:{method}"

    def _error(self, status: int, body: bytes, headers: Mapping[str, str]) -> ProviderError:
        secrets = self.secrets()
        mapped = gemini_error(status, secrets.body(body), headers, provider=self.name, secrets=secrets.values)
        return secrets.error(mapped)

    async def _post(self, url: str, payload: JSON, timeout: float | None) -> Any:
        reply = await post_json(
            self.http, url, orjson.dumps(payload), headers=self._headers, error=self._error, timeout=timeout
        )
        return reply.data

    async def complete(
        self, request: ChatRequest, model: str, *, timeout: float | None = None
    ) -> ChatCompletion:
        answer = await self._post(self.url(model, "generateContent"), to_gemini(request), timeout)
        try:
            return from_gemini(json_object(answer, self.name), model, max_calls=_max_calls(request))
        except TRANSLATION_ERRORS:
            raise malformed(self.name, "returned an answer of the wrong shape") from None

    async def stream(
        self, request: ChatRequest, model: str, *, timeout: float | None = None
    ) -> AsyncIterator[ChatChunk]:
        payload = orjson.dumps(to_gemini(request))
        include_usage = bool((request.get("stream_options") or {}).get("include_usage"))
        state = GeminiStream(model, include_usage=include_usage, max_calls=_max_calls(request))
        url = self.url(model, "streamGenerateContent") + "?alt=sse"
        events = sse_stream(
            self.http,
            url,
            payload,
            headers=self._headers,
            error=self._error,
            timeout=timeout,
            finished=lambda: state.finished,
        )
        async with aclosing(events):
            async for _event, data in events:
                event = parse_json_body(data, self.name)
                if not isinstance(event, dict):
                    raise malformed(self.name, "sent a malformed event")
                if isinstance(event.get("error"), dict):
                    code = event["error"].get("code")
                    status = code if type(code) is int and 400 <= code <= 599 else 500
                    raise self._error(status, data, {})
                try:
                    chunks = state.feed(event)
                except TRANSLATION_ERRORS:
                    raise malformed(self.name, "sent a stream event of the wrong shape") from None
                for chunk in chunks:
                    yield chunk
        try:
            chunks = state.finish()
        except TRANSLATION_ERRORS:
            raise malformed(self.name, "sent a stream of the wrong shape") from None
        for chunk in chunks:
            yield chunk

    async def embed(
        self, request: dict[str, Any], model: str, *, timeout: float | None = None
    ) -> dict[str, Any]:
        texts = embedding_texts(request)
        method, payload = to_embed_request(request, model)
        answer = await self._post(self.url(model, method), payload, timeout)
        try:
            result = from_embed_response(answer, texts, model, self.name)
        except TRANSLATION_ERRORS:
            raise malformed(self.name, "returned embeddings of the wrong shape") from None
        return cast(dict[str, Any], shape.embeddings(result, self.name))
