"""Everything the lifespan builds for one process, reached by handlers through `app.state`."""

from __future__ import annotations

import importlib
import random
from collections.abc import Sequence
from dataclasses import dataclass, field

from llm_gateway.core.config import GatewayConfig
from llm_gateway.providers.base import Provider
from llm_gateway.providers.registry import build_providers
from llm_gateway.routing.deployments import ModelCatalog
from llm_gateway.routing.executor import Executor
from llm_gateway.routing.health import HealthBoard
from llm_gateway.routing.observers import AttemptObserver
from llm_gateway.services.hooks import Hook, HookChain
from llm_gateway.services.pipeline import Pipeline
from llm_gateway.services.pricing import list_price
from llm_gateway.store.redis import SharedBreakers
from llm_gateway.store.responses import MemoryResponseStore, ResponseStore


@dataclass(slots=True)
class Runtime:
    config: GatewayConfig
    providers: dict[str, Provider]
    catalog: ModelCatalog
    pipeline: Pipeline
    executor: Executor
    hooks: HookChain
    responses: ResponseStore = field(default_factory=MemoryResponseStore)
    """Stored Responses API answers (`store: true`), shared by the pipeline and `GET`/`DELETE`."""
    breakers: SharedBreakers | None = None
    master_key: str | None = field(default=None, repr=False)
    """The configured master key's value, read once (the config keeps it a `SecretStr`)."""

    @classmethod
    def build(
        cls,
        config: GatewayConfig,
        rng: random.Random | None = None,
        *,
        hooks: Sequence[Hook] = (),
        observers: Sequence[AttemptObserver] = (),
    ) -> Runtime:
        providers = build_providers(config)
        catalog = ModelCatalog(config, providers, cost=list_price)
        targets = [target for group in catalog.groups for target in group.targets]
        health = HealthBoard(config.routing.breaker, targets)
        executor = Executor(rng, catalog=catalog, health=health, observers=observers)
        breakers = (
            SharedBreakers(config.redis_url.get_secret_value(), config.redis_prefix)
            if config.redis_url
            else None
        )
        if breakers is not None:
            health.on_change = lambda key, _state, until: breakers.publish(key, until)
            health.claim_probe = breakers.claim_probe
        chain = HookChain([*(load_hook(path) for path in config.hooks), *hooks])
        responses = MemoryResponseStore()
        return cls(
            config=config,
            providers=providers,
            catalog=catalog,
            pipeline=Pipeline(catalog, executor, chain, responses=responses),
            executor=executor,
            hooks=chain,
            responses=responses,
            breakers=breakers,
            master_key=config.master_key.get_secret_value() if config.master_key else None,
        )

    async def start(self) -> None:
        """Connect what needs the event loop: the shared circuit-breaker state, if configured."""
        if self.breakers is not None:
            await self.breakers.start(self.executor.health.apply_remote)

    async def aclose(self) -> None:
        if self.breakers is not None:
            await self.breakers.aclose()
        for provider in self.providers.values():
            await provider.aclose()


def load_hook(path: str) -> Hook:
    """`package.module:Factory` → `Factory()`, which must be a `Hook`."""
    module_name, _, attribute = path.partition(":")
    factory = getattr(importlib.import_module(module_name), attribute)
    hook = factory()
    if not isinstance(hook, Hook):
        raise TypeError(f"hook {path!r} made a {type(hook).__name__}, not a llm_gateway.services.hooks.Hook")
    return hook
