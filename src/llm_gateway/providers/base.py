"""The provider interface: what the routing layer may ask of any upstream.

A provider translates the gateway's OpenAI-format request to its native API and back. It
gets a pooled `HttpClient` from outside, returns plain typed dicts, and knows nothing of
web servers, storage or metrics. Optional abilities are data: a provider class declares
them in `capabilities` and implements the matching protocol (`Embedder`, `NativeMessages`,
`NativeResponses`); callers reach those methods through `embedder(...)`, `native_messages(...)`
and `native_responses(...)`, which read the declaration, never the class.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from typing import Any, ClassVar, Protocol, cast

from pydantic import SecretStr

from llm_gateway.core.capabilities import CHAT_ONLY, Capability
from llm_gateway.core.config import ProviderSettings
from llm_gateway.core.secrets import SecretHeaders, SecretUrl
from llm_gateway.core.types import JSON, ChatChunk, ChatCompletion, ChatRequest
from llm_gateway.providers.redaction import Secrets, url_secrets
from llm_gateway.providers.transport import HttpClient


class Provider(ABC):
    """One configured upstream account (`providers.<name>` in the config)."""

    settings_model: ClassVar[type[ProviderSettings]]
    capabilities: ClassVar[frozenset[Capability]] = CHAT_ONLY

    def __init__(self, name: str, settings: ProviderSettings, http: HttpClient) -> None:
        self.name = name
        self.settings = settings
        self.http = http
        self._secrets = Secrets(credentials(settings))

    def secrets(self) -> Secrets:
        """Every credential of this provider: its error mapping scrubs them from upstream text.

        By default every secret-typed setting (keys, tokens, `headers:` values, the userinfo
        and query values of URLs); a provider with credentials of its own kind adds them.
        """
        return self._secrets

    @abstractmethod
    async def complete(
        self, request: ChatRequest, model: str, *, timeout: float | None = None
    ) -> ChatCompletion:
        """Answer a non-streaming chat request with `model` as the upstream model id."""

    @abstractmethod
    def stream(
        self, request: ChatRequest, model: str, *, timeout: float | None = None
    ) -> AsyncIterator[ChatChunk]:
        """Stream a chat answer as OpenAI chunks.

        Must be an async generator whose upstream request lives in an `async with`, so
        closing or cancelling the iterator closes the upstream connection at once.
        """

    async def aclose(self) -> None:
        await self.http.aclose()


def credentials(settings: ProviderSettings) -> list[str]:
    """The values of every secret-typed field of `settings`."""
    found: list[str] = []
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if isinstance(value, SecretStr):
            found.append(value.get_secret_value())
        elif isinstance(value, SecretUrl):
            found += url_secrets(value.get_secret_value())
        elif isinstance(value, SecretHeaders):
            found += value.values()
    return found


SSEEvent = tuple[str, bytes]
"""One Anthropic stream event as relayed: its name and its `data` bytes."""


class Embedder(Protocol):
    """A provider that can answer `/v1/embeddings` (OpenAI request and response format):
    `Capability.EMBEDDINGS`."""

    async def embed(
        self, request: dict[str, Any], model: str, *, timeout: float | None = None
    ) -> dict[str, Any]: ...


class NativeMessages(Protocol):
    """A provider that speaks the Messages API itself, so `/v1/messages` can pass through:
    `Capability.MESSAGES`.

    Bodies go out as the client sent them but for `model`; answers come back untouched.
    `beta` and `version` are the client's `anthropic-beta` and `anthropic-version` headers,
    forwarded (without a `version`, the provider's configured one is sent).
    """

    async def messages(
        self,
        body: JSON,
        model: str,
        *,
        timeout: float | None = None,
        beta: str | None = None,
        version: str | None = None,
    ) -> JSON: ...

    def messages_stream(
        self,
        body: JSON,
        model: str,
        *,
        timeout: float | None = None,
        beta: str | None = None,
        version: str | None = None,
    ) -> AsyncIterator[SSEEvent]: ...

    async def count_tokens(
        self,
        body: JSON,
        model: str,
        *,
        timeout: float | None = None,
        beta: str | None = None,
        version: str | None = None,
    ) -> JSON: ...


class NativeCompletions(Protocol):
    """A provider that serves OpenAI's legacy `/v1/completions` itself: `Capability.COMPLETIONS`.
    The body goes out as sent but for `model`; answers and chunks come back as parsed."""

    async def completions(self, body: JSON, model: str, *, timeout: float | None = None) -> JSON: ...

    def completions_stream(
        self, body: JSON, model: str, *, timeout: float | None = None
    ) -> AsyncIterator[JSON]: ...


class NativeResponses(Protocol):
    """A provider that can speak OpenAI's Responses API itself, so `/v1/responses` can pass
    through: `Capability.RESPONSES`, and `serves_responses` for this deployment (a class
    that can speak it is still configured per deployment: an OpenAI-compatible server
    usually has no `/responses`).

    Bodies go out as given but for `model`; answers come back untouched: a Response
    object, or the stream's events parsed (each a dict with its `type`), ending with its
    terminal event (`response.completed`, `response.incomplete` or `response.failed`).
    """

    @property
    def serves_responses(self) -> bool: ...

    async def responses(self, body: JSON, model: str, *, timeout: float | None = None) -> JSON: ...

    def responses_stream(
        self, body: JSON, model: str, *, timeout: float | None = None
    ) -> AsyncIterator[JSON]: ...


def embedder(provider: Provider) -> Embedder | None:
    """`provider` as an `Embedder` when its class declares `Capability.EMBEDDINGS`, else None."""
    return cast(Embedder, provider) if Capability.EMBEDDINGS in provider.capabilities else None


def native_messages(provider: Provider) -> NativeMessages | None:
    """`provider` as `NativeMessages` when its class declares `Capability.MESSAGES`, else None."""
    return cast(NativeMessages, provider) if Capability.MESSAGES in provider.capabilities else None


def native_completions(provider: Provider) -> NativeCompletions | None:
    """`provider` as `NativeCompletions` when its class declares `Capability.COMPLETIONS`, else None."""
    return cast(NativeCompletions, provider) if Capability.COMPLETIONS in provider.capabilities else None


def native_responses(provider: Provider) -> NativeResponses | None:
    """`provider` as `NativeResponses` when its class declares `Capability.RESPONSES` and this
    deployment is configured to serve the Responses API natively, else None."""
    if Capability.RESPONSES not in provider.capabilities:
        return None
    native = cast(NativeResponses, provider)
    return native if native.serves_responses else None
