"""Everything the lifespan builds for one process, handed to handlers through `api/deps.py`."""

from __future__ import annotations

import random
from dataclasses import dataclass

from llm_gateway.core.config import GatewayConfig
from llm_gateway.providers.base import Provider
from llm_gateway.providers.registry import build_providers
from llm_gateway.routing.deployments import ModelCatalog
from llm_gateway.routing.executor import Executor
from llm_gateway.routing.health import HealthBoard
from llm_gateway.services.chat import ChatService
from llm_gateway.services.embeddings import EmbeddingService
from llm_gateway.store.redis import SharedBreakers


@dataclass(slots=True)
class Runtime:
    config: GatewayConfig
    providers: dict[str, Provider]
    catalog: ModelCatalog
    chat: ChatService
    embeddings: EmbeddingService
    executor: Executor
    breakers: SharedBreakers | None = None

    @classmethod
    def build(cls, config: GatewayConfig, rng: random.Random | None = None) -> Runtime:
        providers = build_providers(config)
        catalog = ModelCatalog(config, providers)
        targets = [target for group in catalog.groups for target in group.targets]
        health = HealthBoard(config.routing.breaker, targets)
        executor = Executor(rng, catalog=catalog, health=health)
        breakers = (
            SharedBreakers(config.redis_url.get_secret_value(), config.redis_prefix)
            if config.redis_url
            else None
        )
        if breakers is not None:
            health.on_change = lambda key, _state, until: breakers.publish(key, until)
            health.claim_probe = breakers.claim_probe
        return cls(
            config=config,
            providers=providers,
            catalog=catalog,
            chat=ChatService(catalog, executor),
            embeddings=EmbeddingService(catalog, executor),
            executor=executor,
            breakers=breakers,
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
