"""Azure OpenAI settings and URLs."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from llm_gateway.providers.azure import AzureProvider, AzureSettings, azure_url, is_annotation_chunk
from llm_gateway.providers.transport import HttpClient
from tests.gateway import UPSTREAM_CLIENT

ENDPOINT = "https://myres.openai.azure.com"


def settings(**values: Any) -> AzureSettings:
    return AzureSettings.model_validate(
        {"type": "azure", "endpoint": ENDPOINT, "api_key": "k" * 32, **values}
    )


def test_deployment_route_with_the_ga_api_version() -> None:
    assert azure_url(settings(), "gpt-4o", "chat/completions") == (
        f"{ENDPOINT}/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21"
    )
    assert azure_url(settings(api_version="2025-04-01-preview"), "my embed", "embeddings") == (
        f"{ENDPOINT}/openai/deployments/my%20embed/embeddings?api-version=2025-04-01-preview"
    )


@pytest.mark.parametrize("endpoint", [ENDPOINT, f"{ENDPOINT}/", f"{ENDPOINT}/openai", f"{ENDPOINT}/openai/"])
def test_v1_route_has_no_api_version(endpoint: str) -> None:
    assert azure_url(settings(endpoint=endpoint, route="v1"), "gpt-4o", "chat/completions") == (
        f"{ENDPOINT}/openai/v1/chat/completions"
    )


@pytest.mark.parametrize(
    "values",
    [{"api_key": None}, {"azure_ad_token": "t"}, {"route": "v2"}, {"base_url": "x"}],
)
def test_exactly_one_credential_and_known_keys(values: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        settings(**values)


def test_credential_headers() -> None:
    keyed = AzureProvider("a", settings(), HttpClient("a", settings(), client=UPSTREAM_CLIENT))
    assert keyed._headers["api-key"] == "k" * 32 and "authorization" not in keyed._headers
    entra = settings(api_key=None, azure_ad_token="tok")
    bearer = AzureProvider("a", entra, HttpClient("a", entra, client=UPSTREAM_CLIENT))
    assert bearer._headers["authorization"] == "Bearer tok" and "api-key" not in bearer._headers


def test_a_fixed_deployment_overrides_the_model() -> None:
    fixed = settings(deployment="prod-gpt")
    provider = AzureProvider("a", fixed, HttpClient("a", fixed, client=UPSTREAM_CLIENT))
    assert provider.deployment("anything") == "prod-gpt"


def test_annotation_chunks_are_recognized() -> None:
    assert is_annotation_chunk({"choices": [], "model": "", "prompt_filter_results": []})
    assert not is_annotation_chunk({"choices": [], "usage": {"total_tokens": 3}})
    assert not is_annotation_chunk({"choices": [{"index": 0, "delta": {}}]})
