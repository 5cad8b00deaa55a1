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
    ModelGroup,
    ProviderSettings,
    RoutingOverride,
    RoutingSettings,
    is_pattern,
)
from llm_gateway.core.errors import InvalidRequest, ModelNotFound
from llm_gateway.providers.base import Provider
from llm_gateway.routing.names import RECENT_NAMES, ModelNames, Recent, Wildcard

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


@dataclass(frozen=True, slots=True)
class Listed:
    """One entry of `/v1/models`: a model, an alias of one, or a wildcard pattern."""

    id: str
    alias_of: str | None = None
    pattern: bool = False


class ModelCatalog:
    """The public model names and the deployments behind each, built once at start-up.

    Aliases and wildcard models (`routing/names.py`) resolve here too: an alias is its
    target's own group (same deployments, same health); a name matching a wildcard model
    gets a group derived for it, kept in a bounded cache, whose deployment keys name the
    pattern and the resolved upstream model (`anthropic/*/0:claude/claude-x`), so health and
    breakers are kept per upstream model."""

    def __init__(
        self,
        config: GatewayConfig,
        providers: Mapping[str, Provider],
        cost: DeploymentCost = deployment_cost,
    ) -> None:
        self.default_model = config.default_model
        self._config = config
        self._providers = providers
        self._cost = cost
        self._names = ModelNames(config.models, config.aliases)
        self._groups: dict[str, Group] = {}
        self._able: Recent[Group] = Recent(4 * RECENT_NAMES)
        self._derived: Recent[Group] = Recent()
        for name, group in config.models.items():
            if not is_pattern(name):
                self._groups[name] = self._build(name, group, name)

    def _build(self, name: str, group: ModelGroup, key_name: str, wildcard: Wildcard | None = None) -> Group:
        providers, cost = self._providers, self._cost
        targets = []
        for index, d in enumerate(group.deployments):
            if wildcard is not None:
                d = d.model_copy(update={"model": wildcard.upstream(name, d.model)})
            targets.append(
                Target(
                    key=deployment_key(key_name, index, d),
                    provider=providers[d.provider],
                    model=d.model or name,
                    weight=d.weight,
                    timeout=d.timeout,
                    rpm=d.rpm,
                    tpm=d.tpm,
                    cost=cost(name, d, providers[d.provider].settings),
                    time_limit=d.timeout or providers[d.provider].settings.timeout,
                )
            )
        policy = merged_policy(self._config.routing, group.routing)
        return Group(
            name=name,
            targets=tuple(targets),
            policy=policy,
            fallbacks=tuple(group.fallbacks),
            context_window_fallbacks=tuple(group.context_window_fallbacks),
            content_policy_fallbacks=tuple(group.content_policy_fallbacks),
            hedge_quantile=float(policy.hedge_after[1:]) / 100 if policy.hedge_after else None,
        )

    def listed(self) -> list[Listed]:
        """What `/v1/models` shows: every model, then every alias, then every pattern
        (wildcard models and glob aliases), in config order."""
        models = [Listed(name) for name in self._groups]
        aliases = [Listed(a, alias_of=t) for a, t in self._config.aliases.items() if not is_pattern(a)]
        patterns = [Listed(name, pattern=True) for name in self._config.models if is_pattern(name)]
        patterns += [
            Listed(a, alias_of=t, pattern=True) for a, t in self._config.aliases.items() if is_pattern(a)
        ]
        return models + aliases + patterns

    @property
    def names(self) -> list[str]:
        return list(self._groups)

    @property
    def groups(self) -> list[Group]:
        return list(self._groups.values())

    def group(self, name: str) -> Group:
        """The group a requested name means: a model, an alias's target, or a group derived
        from the wildcard model it matches."""
        group = self._groups.get(name)
        if group is not None:
            return group
        found = self._names.lookup(name)
        if found is None:
            raise ModelNotFound(
                f"The model {name!r} does not exist on this gateway; "
                "GET /v1/models lists the available ones.",
                param="model",
            )
        configured, wildcard = found
        if wildcard is None:
            return self._groups[configured]
        derived = self._derived.get(name)
        if derived is None:
            template = self._config.models[configured]
            derived = self._derived.put(name, self._build(name, template, configured, wildcard))
        return derived

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
            able = self._able.put((group.name, requires), replace(group, targets=targets, requires=requires))
        return able
