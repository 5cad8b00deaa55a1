"""Anthropic's Messages API, both ways: an upstream for OpenAI-format chat, and the native
target of the `/v1/messages` front door.

The translation is pure and lives beside this module: `request` (chat request → Messages
body), `response` (Message → chat completion), `stream` (events → chunks), `errors`; the
front door's reverse direction is in `frontdoor` and `events`. This module holds the
settings and the I/O.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from contextlib import aclosing
from typing import Annotated, Any

import orjson
from pydantic import Field, SecretStr

from llm_gateway.core.capabilities import Capability
from llm_gateway.core.config import ProviderSettings
from llm_gateway.core.errors import ProviderError
from llm_gateway.core.secrets import SecretHeaders, SecretUrl
from llm_gateway.core.types import JSON, ChatChunk, ChatCompletion, ChatRequest
from llm_gateway.providers.anthropic.errors import anthropic_error, stream_error
from llm_gateway.providers.anthropic.request import structured_tool, to_anthropic
from llm_gateway.providers.anthropic.response import from_anthropic
from llm_gateway.providers.anthropic.stream import AnthropicStream
from llm_gateway.providers.base import Provider, SSEEvent
from llm_gateway.providers.shape import TRANSLATION_ERRORS
from llm_gateway.providers.transport import malformed, parse_json_body
from llm_gateway.providers.upstream import json_object, post_json, sse_stream


class AnthropicSettings(ProviderSettings):
    base_url: SecretUrl = SecretUrl("https://api.anthropic.com")
    api_key: SecretStr | None = None
    anthropic_version: str = "2023-06-01"
    default_max_tokens: Annotated[int, Field(ge=1)] = 4096
    headers: SecretHeaders = Field(default_factory=SecretHeaders)


class AnthropicProvider(Provider):
    settings_model = AnthropicSettings
    capabilities = frozenset({Capability.CHAT, Capability.MESSAGES})
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
        secrets = self.secrets()
        mapped = anthropic_error(
            status, secrets.body(body), headers, provider=self.name, secrets=secrets.values
        )
        return secrets.error(mapped)

    def _client_headers(self, beta: str | None, version: str | None) -> dict[str, str]:
        """The upstream headers with the client's own `anthropic-beta` and `anthropic-version`
        (pass-through only: the client chose the features and the API version its body is in)."""
        if not beta and not version:
            return self._headers
        headers = dict(self._headers)
        if beta:
            headers["anthropic-beta"] = beta
        if version:
            headers["anthropic-version"] = version
        return headers

    async def _post(
        self,
        url: str,
        payload: JSON,
        timeout: float | None,
        beta: str | None = None,
        version: str | None = None,
    ) -> JSON:
        body, headers = orjson.dumps(payload), self._client_headers(beta, version)
        reply = await post_json(self.http, url, body, headers=headers, error=self._error, timeout=timeout)
        return json_object(reply.data, self.name)

    def _events(
        self, payload: JSON, timeout: float | None, beta: str | None = None, version: str | None = None
    ) -> AsyncGenerator[tuple[str | None, bytes], None]:
        """The upstream's events, each with its raw data; HTTP errors raise before the first,
        and a body that ends before the consumer stopped at its terminal event raises too."""
        return sse_stream(
            self.http,
            self._messages_url,
            orjson.dumps(payload),
            headers=self._client_headers(beta, version),
            error=self._error,
            timeout=timeout,
        )

    async def complete(
        self, request: ChatRequest, model: str, *, timeout: float | None = None
    ) -> ChatCompletion:
        payload = to_anthropic(request, model, default_max_tokens=self.settings.default_max_tokens)
        payload.pop("stream", None)
        message = await self._post(self._messages_url, payload, timeout)
        try:
            return from_anthropic(message, created=int(time.time()), json_tool=structured_tool(request))
        except TRANSLATION_ERRORS:
            raise malformed(self.name, "returned a message of the wrong shape") from None

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
        events = self._events(payload, timeout)
        async with aclosing(events):
            async for event, data in events:
                try:
                    chunks = machine.feed(event or "", parse_json_body(data, self.name))
                except TRANSLATION_ERRORS:
                    raise malformed(self.name, "sent a stream event of the wrong shape") from None
                except ProviderError as error:
                    raise self.secrets().error(error) from None
                for chunk in chunks:
                    yield chunk
                if machine.done:
                    return

    async def messages(
        self,
        body: JSON,
        model: str,
        *,
        timeout: float | None = None,
        beta: str | None = None,
        version: str | None = None,
    ) -> JSON:
        return await self._post(self._messages_url, {**body, "model": model}, timeout, beta, version)

    async def messages_stream(
        self,
        body: JSON,
        model: str,
        *,
        timeout: float | None = None,
        beta: str | None = None,
        version: str | None = None,
    ) -> AsyncIterator[SSEEvent]:
        """Relay events as-is. An `error` before any other event raises, so routing still
        sees a failure it may retry; after that it is relayed like the rest, scrubbed of
        `secrets()` (it is the upstream's text, going to the client verbatim)."""
        started = False
        events = self._events({**body, "model": model, "stream": True}, timeout, beta, version)
        async with aclosing(events):
            async for name, data in events:
                event = name or ""
                if event == "error":
                    secrets = self.secrets()
                    data = secrets.event(data)
                    if not started:
                        raise secrets.error(stream_error(data, provider=self.name, secrets=secrets.values))
                started = started or event != "ping"
                yield event, data
                if event in ("message_stop", "error"):
                    return

    async def count_tokens(
        self,
        body: JSON,
        model: str,
        *,
        timeout: float | None = None,
        beta: str | None = None,
        version: str | None = None,
    ) -> JSON:
        return await self._post(self._count_url, {**body, "model": model}, timeout, beta, version)
