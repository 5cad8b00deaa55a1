"""Which OpenAI-wire deployments serve the Responses API natively, and where it lives."""

from __future__ import annotations

from typing import Any

import pytest

from llm_gateway.providers.azure import AzureProvider, AzureSettings
from llm_gateway.providers.base import native_responses
from llm_gateway.providers.openai import OpenAIProvider, OpenAISettings
from llm_gateway.providers.transport import HttpClient
from tests.gateway import UPSTREAM_CLIENT
from tests.stubs import StubProvider


def openai_provider(**values: Any) -> OpenAIProvider:
    settings = OpenAISettings.model_validate({"type": "openai", **values})
    return OpenAIProvider("o", settings, HttpClient("o", settings, client=UPSTREAM_CLIENT))


def azure_provider(**values: Any) -> AzureProvider:
    data = {"type": "azure", "endpoint": "https://res.openai.azure.com", "api_key": "k" * 32, **values}
    settings = AzureSettings.model_validate(data)
    return AzureProvider("a", settings, HttpClient("a", settings, client=UPSTREAM_CLIENT))


@pytest.mark.parametrize(
    ("values", "native"),
    [
        ({}, True),
        ({"base_url": "https://api.openai.com/v1"}, True),
        ({"base_url": "https://api.openai.com/v1", "responses_api": "translate"}, False),
        ({"base_url": "http://localhost:8000/v1"}, False),
        ({"base_url": "http://localhost:8000/v1", "responses_api": "native"}, True),
    ],
)
def test_openai_serves_natively_by_default_only_for_openai_itself(
    values: dict[str, Any], native: bool
) -> None:
    provider = openai_provider(**values)
    assert (native_responses(provider) is not None) is native
    assert provider.responses_url("m") == f"{provider.settings.base_url.get_secret_value()}/responses"


def test_azure_translates_unless_told_otherwise() -> None:
    assert native_responses(azure_provider()) is None
    dated = azure_provider(responses_api="native")
    assert native_responses(dated) is dated
    assert (
        dated.responses_url("dep")
        == "https://res.openai.azure.com/openai/responses?api-version=2025-04-01-preview"
    )
    v1 = azure_provider(responses_api="native", route="v1")
    assert v1.responses_url("dep") == "https://res.openai.azure.com/openai/v1/responses"


def test_a_chat_only_provider_never_serves_natively() -> None:
    assert native_responses(StubProvider()) is None
