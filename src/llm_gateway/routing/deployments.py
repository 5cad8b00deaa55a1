"""Model groups resolved against live providers: what a public model name can be served by,
and the routing policy (top-level `routing:` merged with the model's own) it is served under."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from itertools import accumulate

from llm_gateway.core.capabilities import Capability
from llm_gateway.core.config import (
    Deployment,
    GatewayConfig,
    ProviderSettings,
    RoutingOverride,
    RoutingSettings,
)
from llm_gateway.core.errors import InvalidRequest, ModelNotFound
from llm_gateway.providers.base import Provider

DEFAULT_POLICY = RoutingSettings()
CANNOT = {
    Capability.EMBEDDINGS: "cannot create embeddings: its provider does not support /v1/embeddings",
    Capability.MESSAGES: "has no deployment that speaks the Messages API natively",
    Capability.RESPONSES: "has no deployment that speaks the Responses API natively",
}


@dataclass(frozen=True, slots=True)
class Target:
    """One deployment, bound to its provider instance. `key` names it in headers and health."""

    key: str
    provider: Provider
    model: str
    weight: float = 1.0
    timeout: float | None = None
    rpm: int | None = None
    tpm: int | None = None
    cost: float | None = None
    time_limit: float = math.inf
    """The longest one attempt can take before the provider's own timeout ends it."""


@dataclass(frozen=True, slots=True)
class Group:
    name: str
    targets: tuple[Target, ...]
    policy: RoutingSettings = DEFAULT_POLICY
    fallbacks: tuple[str, ...] = ()
    context_window_fallbacks: tuple[str, ...] = ()
    content_policy_fallbacks: tuple[str, ...] = ()
    hedge_quantile: float | None = field(default=None, compare=False)
    requires: Capability = field(default=Capability.CHAT, compare=False)
    """What the group was narrowed to (by `ModelCatalog.resolve`); its fallbacks are too."""
    cum_weights: tuple[float, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "cum_weights", tuple(accumulate(t.weight for t in self.targets)))


def merged_policy(defaults: RoutingSettings, override: RoutingOverride) -> RoutingSettings:
    """The model's routing settings: its own keys win over the top-level defaults."""
    update = override.model_dump(exclude_none=True)
    if not update:
        return defaults
    if "hedge_after_ms" in update or "hedge_after" in update:
        update.setdefault("hedge_after_ms", None)
        update.setdefault("hedge_after", None)
    return defaults.model_copy(update=update)


def deployment_key(model: str, index: int, deployment: Deployment) -> str:
    """How a deployment is named in headers, health and spend: `model/index:provider/upstream`."""
    return f"{model}/{index}:{deployment.provider}/{deployment.model or model}"


DeploymentCost = Callable[[str, Deployment, ProviderSettings], float | None]
"""(public model, deployment, its provider's settings) → the `cost` strategy's price."""


def deployment_cost(model: str, deployment: Deployment, settings: ProviderSettings) -> float | None:
    """USD per million tokens, input plus output, from the deployment's `pricing:` block, for
    the `cost` strategy (None: unpriced). The runtime passes `services.pricing.list_price`
    instead, which also reads the bundled price database."""
    pricing = deployment.pricing
    if pricing is None or (pricing.input_per_mtok is None and pricing.output_per_mtok is None):
        return None
    return float((pricing.input_per_mtok or 0) + (pricing.output_per_mtok or 0))


class ModelCatalog:
    """The public model names and the deployments behind each, built once at start-up."""

    def __init__(
        self,
        config: GatewayConfig,
        providers: Mapping[str, Provider],
        cost: DeploymentCost = deployment_cost,
    ) -> None:
        self.default_model = config.default_model
        self._groups: dict[str, Group] = {}
        self._able: dict[tuple[str, Capability], Group] = {}
        for name, group in config.models.items():
            targets = tuple(
                Target(
                    key=deployment_key(name, index, d),
                    provider=providers[d.provider],
                    model=d.model or name,
                    weight=d.weight,
                    timeout=d.timeout,
                    rpm=d.rpm,
                    tpm=d.tpm,
                    cost=cost(name, d, providers[d.provider].settings),
                    time_limit=d.timeout or providers[d.provider].settings.timeout,
                )
                for index, d in enumerate(group.deployments)
            )
            policy = merged_policy(config.routing, group.routing)
            self._groups[name] = Group(
                name=name,
                targets=targets,
                policy=policy,
                fallbacks=tuple(group.fallbacks),
                context_window_fallbacks=tuple(group.context_window_fallbacks),
                content_policy_fallbacks=tuple(group.content_policy_fallbacks),
                hedge_quantile=float(policy.hedge_after[1:]) / 100 if policy.hedge_after else None,
            )

    @property
    def names(self) -> list[str]:
        return list(self._groups)

    @property
    def groups(self) -> list[Group]:
        return list(self._groups.values())

    def group(self, name: str) -> Group:
        try:
            return self._groups[name]
        except KeyError:
            raise ModelNotFound(
                f"The model {name!r} does not exist on this gateway; "
                "GET /v1/models lists the available ones.",
                param="model",
            ) from None

    def resolve(self, name: str | None, requires: Capability = Capability.CHAT) -> Group:
        """The group serving `name` (or the default model), narrowed to the deployments whose
        provider declares `requires`: a group mixing chat-only and embedding deployments
        routes embeddings to the latter only. Derived once per (model, capability)."""
        name = name or self.default_model
        if not name:
            raise InvalidRequest(
                "you must provide a model parameter", param="model", code="missing_required_parameter"
            )
        group = self.group(name)
        if requires is Capability.CHAT:
            return group
        able = self._able.get((group.name, requires))
        if able is None:
            targets = tuple(t for t in group.targets if requires in t.provider.capabilities)
            if not targets:
                raise InvalidRequest(
                    f"The model {group.name!r} {CANNOT[requires]}.", param="model", code="model_not_supported"
                )
            able = replace(group, targets=targets, requires=requires)
            self._able[(group.name, requires)] = able
        return able
