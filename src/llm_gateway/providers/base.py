"""The provider interface: what the routing layer may ask of any upstream.

A provider translates the gateway's OpenAI-format request to its native API and back. It
gets a pooled `HttpClient` from outside, returns plain typed dicts, and knows nothing of
web servers, storage or metrics. Optional abilities are data: a provider that can embed
implements `Embedder` and sets `supports_embeddings = True`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from typing import Any, ClassVar, Protocol, cast, runtime_checkable

from llm_gateway.core.capabilities import CHAT_ONLY, Capability
from llm_gateway.core.config import ProviderSettings
from llm_gateway.core.types import ChatChunk, ChatCompletion, ChatRequest
from llm_gateway.providers.transport import HttpClient


class Provider(ABC):
    """One configured upstream account (`providers.<name>` in the config)."""

    settings_model: ClassVar[type[ProviderSettings]]
    supports_embeddings: ClassVar[bool] = False
    capabilities: ClassVar[frozenset[Capability]] = CHAT_ONLY

    def __init__(self, name: str, settings: ProviderSettings, http: HttpClient) -> None:
        self.name = name
        self.settings = settings
        self.http = http

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


@runtime_checkable
class Embedder(Protocol):
    """A provider that can answer `/v1/embeddings` (OpenAI request and response format)."""

    async def embed(
        self, request: dict[str, Any], model: str, *, timeout: float | None = None
    ) -> dict[str, Any]: ...


def embedder(provider: Provider) -> Embedder | None:
    """The provider as an `Embedder` when it declares the capability, else None."""
    if Capability.EMBEDDINGS in provider.capabilities:
        return cast(Embedder, provider)
    return None
