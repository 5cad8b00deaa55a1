"""Anthropic's Messages API, both ways: an upstream for OpenAI-format chat, and the native
target of the `/v1/messages` front door.

The translation is pure and lives beside this module: `anthropic_request` (chat request →
Messages body), `anthropic_response` (Message → chat completion), `anthropic_stream`
(events → chunks), `anthropic_errors`; the front door's reverse direction is in
`anthropic_frontdoor` and `anthropic_events`. This module holds the settings and the I/O.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping
from typing import Annotated, Any, Protocol, cast, runtime_checkable

import orjson
from pydantic import Field, SecretStr

from llm_gateway.core.config import ProviderSettings, SecretHeaders, SecretUrl
from llm_gateway.core.errors import ProviderError, UpstreamConnectionError
from llm_gateway.core.types import JSON, ChatChunk, ChatCompletion, ChatRequest
from llm_gateway.providers.anthropic_errors import anthropic_error, stream_error
from llm_gateway.providers.anthropic_request import structured_tool, to_anthropic
from llm_gateway.providers.anthropic_response import from_anthropic
from llm_gateway.providers.anthropic_stream import AnthropicStream
from llm_gateway.providers.base import Provider
from llm_gateway.providers.transport import parse_json_body, sse_events

SSEEvent = tuple[str, bytes]
"""One Anthropic stream event as relayed: its name and its `data` bytes."""


class AnthropicSettings(ProviderSettings):
    base_url: SecretUrl = SecretUrl("https://api.anthropic.com")
    api_key: SecretStr | None = None
    anthropic_version: str = "2023-06-01"
    default_max_tokens: Annotated[int, Field(ge=1)] = 4096
    headers: SecretHeaders = Field(default_factory=SecretHeaders)


@runtime_checkable
class NativeMessages(Protocol):
    """A provider that speaks the Messages API itself, so `/v1/messages` can pass through.

    Bodies go out as the client sent them but for `model`; answers come back untouched.
    `beta` is the client's `anthropic-beta` header, forwarded.
    """

    async def messages(
        self, body: JSON, model: str, *, timeout: float | None = None, beta: str | None = None
    ) -> JSON: ...

    def messages_stream(
        self, body: JSON, model: str, *, timeout: float | None = None, beta: str | None = None
    ) -> AsyncIterator[SSEEvent]: ...

    async def count_tokens(
        self, body: JSON, model: str, *, timeout: float | None = None, beta: str | None = None
    ) -> JSON: ...


class AnthropicProvider(Provider):
    settings_model = AnthropicSettings
    settings: AnthropicSettings

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        base = self.settings.base_url.get_secret_value().rstrip("/")
        self._messages_url = f"{base}/v1/messages"
        self._count_url = f"{base}/v1/messages/count_tokens"
        self._api_key = self.settings.api_key.get_secret_value() if self.settings.api_key else None
        headers = {"content-type": "application/json", **self.settings.headers}
        headers["anthropic-version"] = self.settings.anthropic_version
        if self._api_key:
            headers["x-api-key"] = self._api_key
        self._headers = headers

    def _error(self, status: int, body: bytes, headers: Mapping[str, str]) -> ProviderError:
        return anthropic_error(status, body, headers, provider=self.name, secrets=(self._api_key,))

    def _with_beta(self, beta: str | None) -> dict[str, str]:
        return {**self._headers, "anthropic-beta": beta} if beta else self._headers

    async def _post(self, url: str, payload: JSON, timeout: float | None, beta: str | None = None) -> JSON:
        async with self.http.request(
            "POST", url, body=orjson.dumps(payload), headers=self._with_beta(beta), timeout=timeout
        ) as response:
            body = await response.read()
            if response.status >= 400:
                raise self._error(response.status, body, response.headers)
        result = parse_json_body(body, self.name)
        if not isinstance(result, dict):
            raise self._error(502, body, {})
        return cast(JSON, result)

    async def _events(
        self, payload: JSON, timeout: float | None, beta: str | None = None
    ) -> AsyncIterator[SSEEvent]:
        """The upstream's events, each with its raw data; HTTP errors raise before the first."""
        async with self.http.request(
            "POST",
            self._messages_url,
            body=orjson.dumps(payload),
            headers=self._with_beta(beta),
            timeout=timeout,
            stream=True,
        ) as response:
            if response.status >= 400:
                raise self._error(response.status, await response.read(), response.headers)
            async for event, data in sse_events(response):
                yield event or "", data

    async def complete(
        self, request: ChatRequest, model: str, *, timeout: float | None = None
    ) -> ChatCompletion:
        payload = to_anthropic(request, model, default_max_tokens=self.settings.default_max_tokens)
        payload.pop("stream", None)
        message = await self._post(self._messages_url, payload, timeout)
        return from_anthropic(message, created=int(time.time()), json_tool=structured_tool(request))

    async def stream(
        self, request: ChatRequest, model: str, *, timeout: float | None = None
    ) -> AsyncIterator[ChatChunk]:
        payload = to_anthropic(request, model, default_max_tokens=self.settings.default_max_tokens)
        payload["stream"] = True
        machine = AnthropicStream(
            created=int(time.time()),
            include_usage=bool((request.get("stream_options") or {}).get("include_usage")),
            provider=self.name,
            json_tool=structured_tool(request),
        )
        async for event, data in self._events(payload, timeout):
            for chunk in machine.feed(event, parse_json_body(data, self.name)):
                yield chunk
            if machine.done:
                return
        raise UpstreamConnectionError(
            f"upstream provider {self.name!r} ended the stream early", provider=self.name
        )

    async def messages(
        self, body: JSON, model: str, *, timeout: float | None = None, beta: str | None = None
    ) -> JSON:
        return await self._post(self._messages_url, {**body, "model": model}, timeout, beta)

    async def messages_stream(
        self, body: JSON, model: str, *, timeout: float | None = None, beta: str | None = None
    ) -> AsyncIterator[SSEEvent]:
        """Relay events as-is. An `error` before any other event raises, so routing still
        sees a failure it may retry; after that it is relayed like the rest."""
        started = False
        async for event, data in self._events({**body, "model": model, "stream": True}, timeout, beta):
            if event == "error" and not started:
                raise stream_error(data, provider=self.name, secrets=(self._api_key,))
            started = started or event != "ping"
            yield event, data
            if event in ("message_stop", "error"):
                return
        raise UpstreamConnectionError(
            f"upstream provider {self.name!r} ended the stream early", provider=self.name
        )

    async def count_tokens(
        self, body: JSON, model: str, *, timeout: float | None = None, beta: str | None = None
    ) -> JSON:
        return await self._post(self._count_url, {**body, "model": model}, timeout, beta)
