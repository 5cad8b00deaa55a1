"""Any OpenAI-compatible API: OpenAI itself, vLLM, Ollama, llama.cpp, Groq, Together, ...

The request is the lingua franca already, so it passes through untouched except for
`model`, which becomes the deployment's upstream id. Responses come back as parsed.

The Responses API (`/responses`) is served natively when `responses_api` says `native`,
which is the default for OpenAI itself (`api.openai.com`) only: most OpenAI-compatible
servers have no `/responses`, so by default they get `/v1/responses` translated onto
chat completions (services/responses.py).
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import AsyncGenerator, AsyncIterator, Iterable, Mapping
from contextlib import aclosing
from typing import Any, Literal, cast
from urllib.parse import urlsplit

import orjson
from pydantic import Field, SecretStr

from llm_gateway.core.capabilities import Capability
from llm_gateway.core.config import ProviderSettings
from llm_gateway.core.errors import (
    ContentPolicyViolation,
    ContextLengthExceeded,
    ProviderError,
    UpstreamUnavailable,
)
from llm_gateway.core.secrets import SecretHeaders, SecretUrl
from llm_gateway.core.types import JSON, ChatChunk, ChatCompletion, ChatRequest
from llm_gateway.providers import shape
from llm_gateway.providers.base import Provider, credentials
from llm_gateway.providers.redaction import Secrets
from llm_gateway.providers.transport import (
    body_text,
    error_for_status,
    parse_json_body,
    redact,
    retry_after_seconds,
)
from llm_gateway.providers.upstream import json_object, post_json, sse_stream

CONTEXT_CODES = frozenset({"context_length_exceeded", "string_above_max_length"})
POLICY_CODES = frozenset({"content_policy_violation", "content_filter"})
RESPONSES_TERMINAL = frozenset({"response.completed", "response.incomplete", "response.failed"})
OPENAI_HOST = "api.openai.com"
ResponsesMode = Literal["native", "translate"]


class OpenAISettings(ProviderSettings):
    base_url: SecretUrl = SecretUrl("https://api.openai.com/v1")
    api_key: SecretStr | None = None
    organization: str | None = None
    headers: SecretHeaders = Field(default_factory=SecretHeaders)
    responses_api: ResponsesMode | None = None
    """`native`: `/v1/responses` goes to this upstream's `/responses` as is; `translate`:
    onto chat completions. Default: native for api.openai.com, translate elsewhere."""


def openai_error(
    status: int, body: bytes, headers: Mapping[str, str], *, provider: str, secrets: Iterable[str | None]
) -> ProviderError:
    """Map an OpenAI-format error response to the gateway's error tree."""
    message, code, param = f"HTTP {status}", None, None
    try:
        error = orjson.loads(body).get("error")
    except (orjson.JSONDecodeError, AttributeError):
        error = None
    if isinstance(error, dict):
        message = str(error.get("message") or message)
        code = error.get("code") if isinstance(error.get("code"), str) else None
        param = error.get("param") if isinstance(error.get("param"), str) else None
    elif isinstance(error, str):
        message = error
    elif body:
        message = body_text(body, secrets) or message
    message = redact(message, secrets)
    if status == 400 and (code in CONTEXT_CODES or "maximum context length" in message):
        return ContextLengthExceeded(message, provider=provider, param=param)
    if status == 400 and code in POLICY_CODES:
        return ContentPolicyViolation(message, provider=provider, param=param)
    return error_for_status(
        status, message, provider=provider, code=code, param=param, retry_after=retry_after_seconds(headers)
    )


class OpenAIWireProvider(Provider):
    """The OpenAI wire protocol over HTTP, shared by every API that speaks it (OpenAI, Azure).

    Subclasses say where requests go (`chat_url`, `embeddings_url`) and set `_headers`.
    Every error, before the first chunk or mid-stream, is scrubbed of `secrets()`.
    """

    capabilities = frozenset({Capability.CHAT, Capability.EMBEDDINGS, Capability.RESPONSES})
    _api_key: str | None
    _headers: dict[str, str]

    @abstractmethod
    def chat_url(self, model: str) -> str: ...

    @abstractmethod
    def embeddings_url(self, model: str) -> str: ...

    @abstractmethod
    def responses_url(self, model: str) -> str: ...

    @property
    @abstractmethod
    def serves_responses(self) -> bool:
        """Whether this deployment answers `/v1/responses` natively (its `responses_api`)."""

    def _error(self, status: int, body: bytes, headers: Mapping[str, str]) -> ProviderError:
        secrets = self.secrets()
        mapped = openai_error(status, secrets.body(body), headers, provider=self.name, secrets=secrets.values)
        return secrets.error(mapped)

    async def _post_json(self, url: str, payload: dict[str, Any], timeout: float | None) -> Any:
        reply = await post_json(
            self.http, url, orjson.dumps(payload), headers=self._headers, error=self._error, timeout=timeout
        )
        return reply.data

    async def complete(
        self, request: ChatRequest, model: str, *, timeout: float | None = None
    ) -> ChatCompletion:
        payload = {**request, "model": model}
        answer = await self._post_json(self.chat_url(model), payload, timeout)
        return cast(ChatCompletion, shape.chat_completion(answer, self.name))

    async def stream(
        self, request: ChatRequest, model: str, *, timeout: float | None = None
    ) -> AsyncIterator[ChatChunk]:
        chunks = self._chunks(self.chat_url(model), {**request, "model": model}, timeout)
        async with aclosing(chunks):
            async for chunk in chunks:
                yield cast(ChatChunk, chunk)

    async def _chunks(
        self, url: str, payload: JSON, timeout: float | None = None
    ) -> AsyncGenerator[JSON, None]:
        """The parsed chunks of a streamed OpenAI-format answer, up to `[DONE]`."""
        body = orjson.dumps({**payload, "stream": True})
        events = sse_stream(self.http, url, body, headers=self._headers, error=self._error, timeout=timeout)
        async with aclosing(events):
            async for _event, data in events:
                if data == b"[DONE]":
                    return
                chunk = parse_json_body(data, self.name)
                if isinstance(chunk, dict) and "error" in chunk:
                    raise self.secrets().error(self._mid_stream_error(chunk["error"]))
                yield shape.chat_chunk(chunk, self.name)

    def _mid_stream_error(self, error: Any) -> ProviderError:
        """The error an `{"error": ...}` event names; the caller scrubs it."""
        message = error.get("message") if isinstance(error, dict) else str(error)
        text = redact(str(message), self.secrets().values)
        return UpstreamUnavailable(
            f"upstream provider {self.name!r} failed mid-stream: {text}",
            provider=self.name,
        )

    async def embed(
        self, request: dict[str, Any], model: str, *, timeout: float | None = None
    ) -> dict[str, Any]:
        url = self.embeddings_url(model)
        result: dict[str, Any] = await self._post_json(url, {**request, "model": model}, timeout)
        return cast(dict[str, Any], shape.embeddings(result, self.name))

    async def responses(self, body: JSON, model: str, *, timeout: float | None = None) -> JSON:
        result = await self._post_json(self.responses_url(model), {**body, "model": model}, timeout)
        return json_object(result, self.name)

    async def responses_stream(
        self, body: JSON, model: str, *, timeout: float | None = None
    ) -> AsyncIterator[JSON]:
        """The upstream's Responses events, parsed, up to its terminal event; an `error`
        event before that is a mid-stream failure."""
        payload = orjson.dumps({**body, "model": model, "stream": True})
        events = sse_stream(
            self.http,
            self.responses_url(model),
            payload,
            headers=self._headers,
            error=self._error,
            timeout=timeout,
        )
        async with aclosing(events):
            async for _event, data in events:
                if data == b"[DONE]":
                    return
                event = json_object(parse_json_body(data, self.name), self.name)
                if event.get("type") == "error":
                    raise self._mid_stream_error(event)
                yield event
                if event.get("type") in RESPONSES_TERMINAL:
                    return


class OpenAIProvider(OpenAIWireProvider):
    """OpenAI and every API that speaks its wire format; these also serve the legacy
    `/v1/completions` natively (vLLM, llama.cpp, Ollama and Together still do)."""

    settings_model = OpenAISettings
    capabilities = frozenset(
        {Capability.CHAT, Capability.EMBEDDINGS, Capability.COMPLETIONS, Capability.RESPONSES}
    )
    settings: OpenAISettings

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        base = self.settings.base_url.get_secret_value().rstrip("/")
        self._chat_url = f"{base}/chat/completions"
        self._embeddings_url = f"{base}/embeddings"
        self._completions_url = f"{base}/completions"
        self._responses_url = f"{base}/responses"
        mode = self.settings.responses_api
        self._serves_responses = (
            (urlsplit(base).hostname == OPENAI_HOST) if mode is None else mode == "native"
        )
        self._api_key = self.settings.api_key.get_secret_value() if self.settings.api_key else None
        headers = {"content-type": "application/json", **self.settings.headers}
        if self._api_key:
            headers["authorization"] = f"Bearer {self._api_key}"
        if self.settings.organization:
            headers["openai-organization"] = self.settings.organization
        self._headers = headers
        self._secrets = Secrets([*credentials(self.settings), self.settings.organization])

    def chat_url(self, model: str) -> str:
        return self._chat_url

    def embeddings_url(self, model: str) -> str:
        return self._embeddings_url

    async def completions(self, body: JSON, model: str, *, timeout: float | None = None) -> JSON:
        result = await self._post_json(self._completions_url, {**body, "model": model}, timeout)
        return json_object(result, self.name)

    def completions_stream(
        self, body: JSON, model: str, *, timeout: float | None = None
    ) -> AsyncIterator[JSON]:
        return self._chunks(self._completions_url, {**body, "model": model}, timeout)

    def responses_url(self, model: str) -> str:
        return self._responses_url

    @property
    def serves_responses(self) -> bool:
        return self._serves_responses
