"""Model groups resolved against live providers: what a public model name can be served by."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from llm_gateway.core.config import GatewayConfig
from llm_gateway.core.errors import ModelNotFound
from llm_gateway.providers.base import Provider


@dataclass(frozen=True, slots=True)
class Target:
    """One deployment, bound to its provider instance."""

    key: str
    provider: Provider
    model: str
    weight: float
    timeout: float | None


@dataclass(frozen=True, slots=True)
class Group:
    name: str
    targets: tuple[Target, ...]


class ModelCatalog:
    """The public model names and the deployments behind each, built once at start-up."""

    def __init__(self, config: GatewayConfig, providers: Mapping[str, Provider]) -> None:
        self.default_model = config.default_model
        self._groups: dict[str, Group] = {}
        for name, group in config.models.items():
            targets = tuple(
                Target(
                    key=f"{name}/{index}:{d.provider}/{d.model or name}",
                    provider=providers[d.provider],
                    model=d.model or name,
                    weight=d.weight,
                    timeout=d.timeout,
                )
                for index, d in enumerate(group.deployments)
            )
            self._groups[name] = Group(name=name, targets=targets)

    @property
    def names(self) -> list[str]:
        return list(self._groups)

    def group(self, name: str) -> Group:
        try:
            return self._groups[name]
        except KeyError:
            raise ModelNotFound(
                f"The model {name!r} does not exist on this gateway; GET /v1/models lists the available ones.",
                param="model",
            ) from None
