"""Deployments without a network: a provider stub and a way to make targets and groups."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from llm_gateway.core.config import BreakerSettings, GatewayConfig, ProviderSettings, RoutingSettings
from llm_gateway.core.types import ChatChunk, ChatCompletion, ChatRequest
from llm_gateway.providers.base import Provider
from llm_gateway.providers.transport import HttpClient
from llm_gateway.routing.deployments import Group, ModelCatalog, Target


class StubProvider(Provider):
    settings_model = ProviderSettings

    async def complete(
        self, request: ChatRequest, model: str, *, timeout: float | None = None
    ) -> ChatCompletion:
        raise NotImplementedError

    async def stream(
        self, request: ChatRequest, model: str, *, timeout: float | None = None
    ) -> AsyncIterator[ChatChunk]:
        raise NotImplementedError
        yield


def provider(name: str = "stub") -> StubProvider:
    settings = ProviderSettings(type="stub")
    return StubProvider(name, settings, HttpClient(name, settings))


def target(key: str, **fields: Any) -> Target:
    return Target(key=key, provider=provider(key), model=key, **fields)


def group(name: str, *targets: Target, **policy: Any) -> Group:
    fallbacks = {k: tuple(policy.pop(k)) for k in list(policy) if k.endswith("fallbacks")}
    quantile = policy.pop("hedge_quantile", None)
    return Group(
        name=name,
        targets=targets,
        policy=RoutingSettings(**policy),
        hedge_quantile=quantile,
        **fallbacks,
    )


QUICK_BREAKER = BreakerSettings(failures=2, failure_rate=None, window=60, cooldown=30, long_retry_after=20)


def catalog(models: dict[str, dict[str, Any]], **routing: Any) -> ModelCatalog:
    """A catalog over one stub provider `p`; each model block as in the YAML config."""
    config = GatewayConfig.model_validate(
        {"providers": {"p": ProviderSettings(type="stub")}, "models": models, "routing": routing}
    )
    return ModelCatalog(config, {"p": provider("p")})


def deployments(*models: str, **fields: Any) -> dict[str, Any]:
    return {"deployments": [{"provider": "p", "model": m} for m in models], **fields}
