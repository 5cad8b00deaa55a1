"""Everything the lifespan builds for one process, reached by handlers through `app.state`."""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from llm_gateway.core.config import GatewayConfig
from llm_gateway.providers.base import Provider
from llm_gateway.providers.registry import build_providers
from llm_gateway.routing.deployments import ModelCatalog
from llm_gateway.routing.executor import Executor
from llm_gateway.routing.health import HealthBoard
from llm_gateway.routing.observers import AttemptObserver
from llm_gateway.services.access import ModelAccess
from llm_gateway.services.governance import GovernanceHook, build_governance
from llm_gateway.services.hooks import Hook, HookChain
from llm_gateway.services.identities import Identities, SpendView
from llm_gateway.services.jwtauth import JWTVerifier
from llm_gateway.services.keyindex import KeyIndex
from llm_gateway.services.pipeline import Pipeline
from llm_gateway.services.pricing import list_price
from llm_gateway.services.tracing import TracingHook
from llm_gateway.store.changes import KeyChanges
from llm_gateway.store.db import Database
from llm_gateway.store.redis import SharedBreakers
from llm_gateway.store.responses import MemoryResponseStore, ResponseStore

if TYPE_CHECKING:
    from llm_gateway.observability.tracing import Tracing

ReadinessCheck = Callable[[], Awaitable[tuple[bool, str]]]
"""(ready, a line for `/ready`); a False makes `/ready` answer 503."""


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
    identities: Identities | None = None
    """Keys and teams: the store, the admin operations, the in-memory index."""
    keys: KeyIndex | None = None
    """The index `authenticate` looks virtual keys up in (`identities.index`)."""
    jwt: JWTVerifier | None = None
    """Verifies identity-provider JWTs (`auth.jwt`), teams looked up in `keys`."""
    spend: SpendView | None = None
    """What a scope has spent this budget period, for `/v1/me`: the governance hook's settled
    counters (None without governance)."""
    governance: GovernanceHook | None = None
    checks: dict[str, ReadinessCheck] = field(default_factory=dict)
    """What `/ready` asks besides the process being up, by name."""
    tracing: Tracing | None = None
    """OpenTelemetry traces (`tracing:`), read by the tracing middleware; None: not configured."""

    @classmethod
    def build(
        cls,
        config: GatewayConfig,
        rng: random.Random | None = None,
        *,
        hooks: Sequence[Hook] = (),
        observers: Sequence[AttemptObserver] = (),
    ) -> Runtime:
        tracing = build_tracing(config)
        providers = build_providers(config, tracing.upstream_headers if tracing is not None else None)
        if tracing is not None:
            observers = [*observers, tracing]
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
        master_key = config.master_key.get_secret_value() if config.master_key else None
        changes = (
            KeyChanges(config.redis_url.get_secret_value(), config.redis_prefix) if config.redis_url else None
        )
        database = Database(config.database_url.get_secret_value())
        identities = Identities(database, config.auth.refresh_seconds, changes)
        jwt = JWTVerifier(config.auth.jwt, identities.index.team) if config.auth.jwt else None
        # Model access first: nothing else should spend effort on a call that will be refused.
        # Without a master key every caller is `open`, with no scopes to check.
        access = [ModelAccess()] if master_key else []
        governance = build_governance(config, catalog, database)
        first = [*access, *([governance] if governance is not None else [])]
        # The tracing hook first: it sees every call, and its `after` the final answer.
        traced = [TracingHook()] if tracing is not None else []
        chain = HookChain([*traced, *first, *(load_hook(path) for path in config.hooks), *hooks])
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
            master_key=master_key,
            identities=identities,
            keys=identities.index,
            jwt=jwt,
            spend=governance,
            governance=governance,
            checks={"governance": governance.readiness} if governance is not None else {},
            tracing=tracing,
        )

    async def start(self) -> None:
        """Connect what needs the event loop: the store (migrated, keys loaded; refuses to
        start open over live keys), then the shared circuit-breaker state, if configured, and
        governance's lease renewer and spend-log flusher."""
        if self.identities is not None:
            await self.identities.start(master_key=self.master_key is not None)
        if self.jwt is not None:
            await self.jwt.start()
        if self.breakers is not None:
            await self.breakers.start(self.executor.health.apply_remote)
        if self.governance is not None:
            await self.governance.start()

    async def readiness(self) -> dict[str, tuple[bool, str]]:
        return {name: await check() for name, check in self.checks.items()}

    async def aclose(self) -> None:
        """After the server drained: settle what is pending, flush the spend log, disconnect."""
        if self.governance is not None:
            await self.governance.aclose()
        if self.breakers is not None:
            await self.breakers.aclose()
        if self.jwt is not None:
            await self.jwt.aclose()
        if self.identities is not None:
            await self.identities.aclose()
        for provider in self.providers.values():
            await provider.aclose()
        if self.tracing is not None:
            await asyncio.to_thread(self.tracing.shutdown)  # flushes: blocking, off the loop


def build_tracing(config: GatewayConfig) -> Tracing | None:
    """The tracer, when `tracing:` is configured; OpenTelemetry is imported only then."""
    if config.tracing is None:
        return None
    from llm_gateway.observability.spans import PROVIDER_NAMES, server_address
    from llm_gateway.observability.tracing import Tracing

    names = {name: PROVIDER_NAMES.get(p.type, p.type) for name, p in config.providers.items()}
    addresses = {
        name: address
        for name, p in config.providers.items()
        if (address := server_address(getattr(p, "base_url", None))) is not None
    }
    return Tracing(config.tracing, names, addresses=addresses)


def tracing_problem(config: GatewayConfig) -> str | None:
    """Why `tracing:` cannot be served (its optional packages are not installed), or None."""
    if config.tracing is None:
        return None
    needed = {"opentelemetry.sdk": "tracing", "opentelemetry.exporter.otlp.proto.http": "tracing"}
    if config.tracing.protocol == "grpc":
        needed["opentelemetry.exporter.otlp.proto.grpc"] = "tracing-grpc"
    for module, extra in needed.items():
        try:
            found = importlib.util.find_spec(module) is not None
        except ModuleNotFoundError:
            found = False
        if not found:
            return f"at tracing: {module} is not installed; pip install 'llm-gateway[{extra}]'"
    return None


def hook_problem(config: GatewayConfig) -> str | None:
    """Why a `hooks:` entry cannot be loaded (checked by `serve` and `check-config` alike,
    before the server starts), or None."""
    for path in config.hooks:
        try:
            hook_factory(path)
        except (ImportError, AttributeError) as exc:
            return f"at hooks: cannot load {path!r}: {exc}"
    return None


def hook_factory(path: str) -> Any:
    module_name, _, attribute = path.partition(":")
    return getattr(importlib.import_module(module_name), attribute)


def load_hook(path: str) -> Hook:
    """`package.module:Factory` → `Factory()`, which must be a `Hook`."""
    factory = hook_factory(path)
    hook = factory()
    if not isinstance(hook, Hook):
        raise TypeError(f"hook {path!r} made a {type(hook).__name__}, not a llm_gateway.services.hooks.Hook")
    return hook
