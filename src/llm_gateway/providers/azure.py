"""Azure OpenAI: the OpenAI wire protocol at a resource endpoint, one deployment per model.

Everything but the address and the credential is OpenAI's, so this reuses the OpenAI
provider's I/O and error mapping. Two routes exist: the dated one
(`/openai/deployments/{deployment}/...?api-version=...`) and the v1 GA one
(`/openai/v1/...`, deployment name in the body's `model`, no api-version).

The Responses API is served natively only with `responses_api: native` (Azure offers it
for some models and regions): at `/openai/v1/responses`, or on the dated route at
`/openai/responses?api-version=<responses_api_version>`, the deployment name in `model`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any, Literal
from urllib.parse import quote

from pydantic import Field, SecretStr, model_validator

from llm_gateway.core.config import ProviderSettings
from llm_gateway.core.errors import ContentPolicyViolation, ProviderError
from llm_gateway.core.secrets import SecretHeaders, SecretUrl
from llm_gateway.core.types import JSON, ChatChunk, ChatCompletion, ChatRequest
from llm_gateway.providers.openai import POLICY_CODES, OpenAIWireProvider, ResponsesMode
from llm_gateway.providers.transport import redact

DEFAULT_API_VERSION = "2024-10-21"
DEFAULT_RESPONSES_API_VERSION = "2025-04-01-preview"


class AzureSettings(ProviderSettings):
    endpoint: SecretUrl
    """`https://RESOURCE.openai.azure.com` (any path after the host is ignored)."""
    deployment: str | None = None
    """One deployment for every model of this provider; by default each gateway deployment's
    upstream `model` is the Azure deployment name."""
    api_version: str = DEFAULT_API_VERSION
    route: Literal["deployments", "v1"] = "deployments"
    api_key: SecretStr | None = None
    azure_ad_token: SecretStr | None = None
    headers: SecretHeaders = Field(default_factory=SecretHeaders)
    responses_api: ResponsesMode = "translate"
    """`native`: `/v1/responses` goes to Azure's Responses API; `translate` (the default):
    onto chat completions."""
    responses_api_version: str = DEFAULT_RESPONSES_API_VERSION
    """The api-version of the dated route's `/openai/responses` (the v1 route takes none)."""

    @model_validator(mode="after")
    def _one_credential(self) -> AzureSettings:
        if (self.api_key is None) == (self.azure_ad_token is None):
            raise ValueError("set exactly one of api_key or azure_ad_token")
        return self


def azure_url(settings: AzureSettings, deployment: str, operation: str) -> str:
    """The URL of `operation` ("chat/completions", "embeddings") for one deployment."""
    endpoint = settings.endpoint.get_secret_value().rstrip("/").removesuffix("/openai")
    if settings.route == "v1":
        return f"{endpoint}/openai/v1/{operation}"
    version = quote(settings.api_version, safe="")
    return f"{endpoint}/openai/deployments/{quote(deployment, safe='')}/{operation}?api-version={version}"


def is_annotation_chunk(chunk: Any) -> bool:
    """Azure opens a stream with a chunk that only carries `prompt_filter_results`
    (empty `choices`, empty `model`). It is not an OpenAI chunk; clients that read
    `choices[0]` break on it, so it is not forwarded. Usage chunks also have empty
    choices and are kept."""
    return isinstance(chunk, dict) and not chunk.get("choices") and not chunk.get("usage")


class AzureProvider(OpenAIWireProvider):
    settings_model = AzureSettings
    settings: AzureSettings

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        headers = {"content-type": "application/json", **self.settings.headers}
        if self.settings.api_key is not None:
            self._api_key = self.settings.api_key.get_secret_value()
            headers["api-key"] = self._api_key
        else:
            assert self.settings.azure_ad_token is not None
            self._api_key = self.settings.azure_ad_token.get_secret_value()
            headers["authorization"] = f"Bearer {self._api_key}"
        self._headers = headers

    def deployment(self, model: str) -> str:
        return self.settings.deployment or model

    def chat_url(self, model: str) -> str:
        return azure_url(self.settings, model, "chat/completions")

    def embeddings_url(self, model: str) -> str:
        return azure_url(self.settings, model, "embeddings")

    def responses_url(self, model: str) -> str:
        endpoint = self.settings.endpoint.get_secret_value().rstrip("/").removesuffix("/openai")
        if self.settings.route == "v1":
            return f"{endpoint}/openai/v1/responses"
        version = quote(self.settings.responses_api_version, safe="")
        return f"{endpoint}/openai/responses?api-version={version}"

    @property
    def serves_responses(self) -> bool:
        return self.settings.responses_api == "native"

    async def responses(self, body: JSON, model: str, *, timeout: float | None = None) -> JSON:
        return await super().responses(body, self.deployment(model), timeout=timeout)

    def responses_stream(
        self, body: JSON, model: str, *, timeout: float | None = None
    ) -> AsyncIterator[JSON]:
        return super().responses_stream(body, self.deployment(model), timeout=timeout)

    async def complete(
        self, request: ChatRequest, model: str, *, timeout: float | None = None
    ) -> ChatCompletion:
        return await super().complete(request, self.deployment(model), timeout=timeout)

    async def stream(
        self, request: ChatRequest, model: str, *, timeout: float | None = None
    ) -> AsyncIterator[ChatChunk]:
        chunks = super().stream(request, self.deployment(model), timeout=timeout)
        async with aclosing(chunks):  # type: ignore[type-var]
            async for chunk in chunks:
                if not is_annotation_chunk(chunk):
                    yield chunk

    async def embed(
        self, request: dict[str, Any], model: str, *, timeout: float | None = None
    ) -> dict[str, Any]:
        return await super().embed(request, self.deployment(model), timeout=timeout)

    def _mid_stream_error(self, error: Any) -> ProviderError:
        """Azure's content filter can stop a stream with an error event of its own."""
        if isinstance(error, dict) and error.get("code") in POLICY_CODES:
            message = redact(str(error.get("message") or "content filtered"), self.secrets().values)
            return ContentPolicyViolation(message, provider=self.name)
        return super()._mid_stream_error(error)
