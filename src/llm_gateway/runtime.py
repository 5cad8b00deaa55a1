"""Everything the lifespan builds for one process, handed to handlers through `api/deps.py`."""

from __future__ import annotations

import random
from dataclasses import dataclass

from llm_gateway.core.config import GatewayConfig
from llm_gateway.providers.base import Provider
from llm_gateway.providers.registry import build_providers
from llm_gateway.routing.deployments import ModelCatalog
from llm_gateway.routing.executor import Executor
from llm_gateway.services.chat import ChatService
from llm_gateway.services.embeddings import EmbeddingService


@dataclass(slots=True)
class Runtime:
    config: GatewayConfig
    providers: dict[str, Provider]
    catalog: ModelCatalog
    chat: ChatService
    embeddings: EmbeddingService

    @classmethod
    def build(cls, config: GatewayConfig, rng: random.Random | None = None) -> Runtime:
        providers = build_providers(config)
        catalog = ModelCatalog(config, providers)
        executor = Executor(rng)
        return cls(
            config=config,
            providers=providers,
            catalog=catalog,
            chat=ChatService(catalog, executor),
            embeddings=EmbeddingService(catalog, executor),
        )

    async def aclose(self) -> None:
        for provider in self.providers.values():
            await provider.aclose()
