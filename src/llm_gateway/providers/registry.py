"""Provider types, from config `type` to implementation: one explicit, lazily imported dict.

Adding a provider is one module under `providers/` and one line here.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from functools import cache

from llm_gateway.core.config import GatewayConfig, ProviderSettings
from llm_gateway.providers.base import Provider
from llm_gateway.providers.transport import HttpClient

PROVIDER_TYPES: dict[str, str] = {
    "openai": "llm_gateway.providers.openai:OpenAIProvider",
    "mock": "llm_gateway.providers.mock:MockProvider",
    "anthropic": "llm_gateway.providers.anthropic.provider:AnthropicProvider",
    "gemini": "llm_gateway.providers.gemini.provider:GeminiProvider",
    "azure": "llm_gateway.providers.azure:AzureProvider",
    "bedrock": "llm_gateway.providers.bedrock.provider:BedrockProvider",
}


@cache
def provider_class(type_name: str) -> type[Provider]:
    module_name, _, class_name = PROVIDER_TYPES[type_name].partition(":")
    cls: type[Provider] = getattr(importlib.import_module(module_name), class_name)
    return cls


def settings_model(type_name: str) -> type[ProviderSettings] | None:
    """The settings model of a provider type, or None when no such type exists."""
    if type_name not in PROVIDER_TYPES:
        return None
    return provider_class(type_name).settings_model


def build_providers(
    config: GatewayConfig,
    keep: Mapping[str, Provider] | None = None,
    propagate: Callable[[str, Mapping[str, str]], Mapping[str, str]] | None = None,
) -> dict[str, Provider]:
    """Instantiate every configured provider with its own pooled HTTP client (`propagate`:
    see `HttpClient`); a provider in `keep` (a reloaded config's previous ones) with the same
    name and settings is reused, pool and all."""
    kept = keep or {}
    providers: dict[str, Provider] = {}
    for name, settings in config.providers.items():
        previous = kept.get(name)
        if (
            previous is not None
            and previous.settings == settings
            and previous.http.client == config.server.upstream_client
        ):
            providers[name] = previous
        else:
            http = HttpClient(name, settings, propagate, client=config.server.upstream_client)
            providers[name] = provider_class(settings.type)(name, settings, http)
    return providers
