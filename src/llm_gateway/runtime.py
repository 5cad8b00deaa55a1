"""Everything the lifespan builds for one process, reached by handlers through `app.state`.

A config reload (`reloader.py`) builds a successor with `Runtime.build(config, previous=…)`:
what holds state or connections (the store, the key index, JWT keys, counters, the spend
log, shared breakers, stored responses, unchanged providers and their pools, the health
board) carries over; what the config shapes (the catalog, the executor, the hook chain) is
new. Requests keep the runtime they started on; the old one is retired when they are done.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from llm_gateway.core.config import GatewayConfig
from llm_gateway.observability.attempts import UpstreamTiming
from llm_gateway.observability.metrics import DeploymentState, Metrics, Probes
from llm_gateway.providers.base import Provider
from llm_gateway.providers.registry import build_providers
from llm_gateway.routing.breaker import Circuit
from llm_gateway.routing.deployments import ModelCatalog
from llm_gateway.routing.executor import Executor
from llm_gateway.routing.health import HealthBoard
from llm_gateway.routing.observers import AttemptObserver
from llm_gateway.services.access import ModelAccess
from llm_gateway.services.attempt_log import AttemptRecorder
from llm_gateway.services.cache import CacheHook, build_cache
from llm_gateway.services.governance import GovernanceHook, build_governance
from llm_gateway.services.guardrails.hook import GuardrailHook, build_guardrails
from llm_gateway.services.hooks import Hook, HookChain
from llm_gateway.services.identities import Identities, SpendView
from llm_gateway.services.keyindex import KeyIndex
from llm_gateway.services.pipeline import Pipeline
from llm_gateway.services.policies import build_policy
from llm_gateway.services.pricing import list_price
from llm_gateway.services.stored_templates import StoredTemplates
from llm_gateway.services.templates import Templates
from llm_gateway.services.tracing import TracingHook
from llm_gateway.store.db import Database
from llm_gateway.store.responses import MemoryResponseStore, ResponseStore
from llm_gateway.store.responses_db import DatabaseResponseStore
from llm_gateway.store.templates import TemplateStore

HookT = TypeVar("HookT", bound=Hook)


class Lifecycle(Protocol):
    async def start(self) -> None: ...

    async def aclose(self) -> None: ...


if TYPE_CHECKING:
    from llm_gateway.observability.tracing import Tracing
    from llm_gateway.services.jwtauth import JWTVerifier
    from llm_gateway.store.redis import SharedBreakers

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
    stored_templates: StoredTemplates | None = None
    """Prompt templates added through the admin API, in memory (shared across reloads)."""
    keys: KeyIndex | None = None
    """The index `authenticate` looks virtual keys up in (`identities.index`)."""
    jwt: JWTVerifier | None = None
    """Verifies identity-provider JWTs (`auth.jwt`), teams looked up in `keys`."""
    spend: SpendView | None = None
    """What a scope has spent this budget period, for `/v1/me`: the governance hook's settled
    counters (None without governance)."""
    governance: GovernanceHook | None = None
    guardrails: GuardrailHook | None = None
    cache: CacheHook | None = None
    checks: dict[str, ReadinessCheck] = field(default_factory=dict)
    """What `/ready` asks besides the process being up, by name."""
    extra_hooks: tuple[Hook, ...] = ()
    """Hooks the embedding application (or a test) passed, kept for a reload."""
    observers: tuple[AttemptObserver, ...] = ()
    inherited: bool = False
    """Built by a reload: everything `start` would start belongs to its predecessor."""
    own: tuple[Lifecycle, ...] = ()
    """Parts built for this config with connections of their own (the guardrails' HTTP
    session, ...): started with this runtime, closed when it retires or closes. Unlike the
    shared parts above, a reload builds them afresh."""
    active: int = 0
    """Per-request calls running on this runtime (`api/endpoint.py` counts them), so a
    reload retires it only when the last one is done."""
    metrics: Metrics | None = None
    """Prometheus metrics (`metrics.enabled`), fed by the access middleware and the executor."""
    background: list[asyncio.Task[None]] = field(default_factory=list)
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
        previous: Runtime | None = None,
        metrics: Metrics | None = None,
    ) -> Runtime:
        """A runtime for `config`; with `previous`, its successor after a reload (which
        `reloader.restart_needed` has checked changes nothing that needs a restart)."""
        tracing = previous.tracing if previous is not None else build_tracing(config)
        propagate = tracing.upstream_headers if tracing is not None else None
        providers = build_providers(config, previous.providers if previous is not None else None, propagate)
        if previous is not None and metrics is None:
            metrics = previous.metrics  # one registry per process, fed by whichever runtime serves
        catalog = ModelCatalog(config, providers, cost=list_price)
        targets = [target for group in catalog.groups for target in group.targets]
        health = _health_board(config, targets, previous)
        watching = config.logging.access or metrics is not None
        timing: list[AttemptObserver] = [
            *([UpstreamTiming()] if watching else []),
            *([metrics] if metrics else []),
            *([tracing] if tracing is not None else []),
        ]
        breakers = previous.breakers if previous is not None else _shared_breakers(config, health)
        master_key = config.master_key.get_secret_value() if config.master_key else None
        if previous is not None and previous.identities is not None:
            identities, jwt = previous.identities, previous.jwt
        else:
            identities = _identities(config)
            jwt = None
            if config.auth.jwt:
                from llm_gateway.services.jwtauth import JWTVerifier  # PyJWT only when configured

                jwt = JWTVerifier(config.auth.jwt, identities.index.team)
        # Model access first: nothing else should spend effort on a call that will be refused.
        # Without a master key every caller is `open`, with no scopes to check.
        access = [ModelAccess()] if master_key else []
        governance = build_governance(
            config, catalog, identities.database, previous.governance if previous is not None else None
        )
        if governance is not None and governance.spend is not None:
            timing.append(AttemptRecorder())  # each request's attempts, for its spend row
        executor = Executor(rng, catalog=catalog, health=health, observers=[*observers, *timing])
        # The tracing hook first: it sees every call, and its `after` the final answer.
        traced: list[Hook] = [TracingHook()] if tracing is not None else []
        chain = HookChain([*traced, *_first_hooks(config, catalog, access, governance), *hooks])
        responses = previous.responses if previous is not None else _responses(config, identities.database)
        if previous is not None and previous.stored_templates is not None:
            stored_templates = previous.stored_templates
        else:
            stored_templates = StoredTemplates(
                TemplateStore(identities.database.engine), config.auth.refresh_seconds
            )
        templates = Templates(config.templates, stored_templates)
        if metrics is not None:
            metrics.probes = metric_probes(catalog, health, governance, identities.index)
        return cls(
            config=config,
            providers=providers,
            catalog=catalog,
            pipeline=Pipeline(catalog, executor, chain, responses=responses, templates=templates),
            executor=executor,
            hooks=chain,
            responses=responses,
            breakers=breakers,
            master_key=master_key,
            identities=identities,
            stored_templates=stored_templates,
            keys=identities.index,
            jwt=jwt,
            spend=governance,
            governance=governance,
            guardrails=_find(chain, GuardrailHook),
            cache=_find(chain, CacheHook),
            own=tuple(hook for hook in chain.hooks if isinstance(hook, GuardrailHook | CacheHook)),
            checks={"governance": governance.readiness} if governance is not None else {},
            extra_hooks=tuple(hooks),
            observers=tuple(observers),
            inherited=previous is not None,
            metrics=metrics,
            background=previous.background if previous is not None else [],
            tracing=tracing,
        )

    async def start(self) -> None:
        """Connect what needs the event loop: the store (migrated, keys loaded; refuses to
        start open over live keys), then the shared circuit-breaker state, if configured, and
        governance's lease renewer and spend-log flusher (a reloaded runtime's predecessor
        started those), and this runtime's own parts."""
        for part in self.own:
            await part.start()
        if self.inherited:
            return
        if self.identities is not None:
            await self.identities.start(master_key=self.master_key is not None)
        if self.stored_templates is not None:
            await self.stored_templates.start()  # after the migration `identities.start` runs
        await self.responses.start()
        if self.jwt is not None:
            await self.jwt.start()
        if self.breakers is not None:
            await self.breakers.start(self.executor.health.apply_remote)
        if self.governance is not None:
            await self.governance.start()
        if self.metrics is not None and self.metrics.multiprocess:
            self.background.append(asyncio.get_running_loop().create_task(self.metrics.refresh_forever()))

    async def readiness(self) -> dict[str, tuple[bool, str]]:
        return {name: await check() for name, check in self.checks.items()}

    async def retire(self, successor: Runtime, poll: float = 0.2, patience: float = 3600.0) -> None:
        """After a reload: once no request runs on this runtime any more (or after
        `patience` seconds), close its own parts and the providers `successor` does not use."""
        waited = 0.0
        while self.active > 0 and waited < patience:
            await asyncio.sleep(poll)
            waited += poll
        for part in self.own:
            await part.aclose()
        kept = {id(provider) for provider in successor.providers.values()}
        for provider in self.providers.values():
            if id(provider) not in kept:
                await provider.aclose()

    async def aclose(self) -> None:
        """After the server drained: settle what is pending, flush the spend log, disconnect."""
        for task in self.background:
            task.cancel()
        await asyncio.gather(*self.background, return_exceptions=True)
        if self.governance is not None:
            await self.governance.aclose()
        for part in self.own:
            await part.aclose()
        if self.breakers is not None:
            await self.breakers.aclose()
        if self.jwt is not None:
            await self.jwt.aclose()
        await self.responses.aclose()
        if self.stored_templates is not None:
            await self.stored_templates.aclose()
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


def _first_hooks(
    config: GatewayConfig, catalog: ModelCatalog, access: Sequence[Hook], governance: GovernanceHook | None
) -> list[Hook]:
    """The gateway's own hooks, each only when configured, then the config's `hooks:`:

        access → policy → guardrails (input) → governance → cache → guardrails (output) → hooks:

    Access, policies and input guardrails refuse before governance admits, so a refused
    request holds no slot and spends no rate-limit token or budget. The cache sits after
    governance, so a hit is admitted and logged (at no cost) like any request, and is keyed
    on the body as policies and input guardrails left it. Output guardrails are innermost,
    so the cache stores (and replays) only checked, redacted answers.
    """
    policy = build_policy(config)
    guardrails = build_guardrails(config)
    outputs = guardrails.output_stage() if guardrails is not None else None
    cache = build_cache(config, catalog, governance.costing if governance is not None else None)
    built: list[Hook | None] = [*access, policy, guardrails, governance, cache, outputs]
    return [*(hook for hook in built if hook is not None), *(load_hook(path) for path in config.hooks)]


def _find(chain: HookChain, kind: type[HookT]) -> HookT | None:
    return next((hook for hook in chain.hooks if isinstance(hook, kind)), None)


def _health_board(config: GatewayConfig, targets: list[Any], previous: Runtime | None) -> HealthBoard:
    """A new board, or the previous runtime's when its breaker settings still hold: an
    unchanged deployment keeps its circuit, latency window and in-flight count."""
    if previous is not None and previous.config.routing.breaker == config.routing.breaker:
        board = previous.executor.health
        for target in targets:
            board.of(target)
        return board
    return HealthBoard(config.routing.breaker, targets)


def _shared_breakers(config: GatewayConfig, health: HealthBoard) -> SharedBreakers | None:
    """Circuit-breaker state shared through Redis, when `redis_url` is set."""
    if not config.redis_url:
        return None
    from llm_gateway.store.redis import SharedBreakers  # redis-py only when configured

    breakers = SharedBreakers(config.redis_url.get_secret_value(), config.redis_prefix)
    health.on_change = lambda key, _state, until: breakers.publish(key, until)
    health.claim_probe = breakers.claim_probe
    return breakers


def _responses(config: GatewayConfig, database: Database) -> ResponseStore:
    """Stored responses in the gateway's database (migrated by `identities.start`), or in memory."""
    settings = config.responses
    if settings.store == "memory":
        return MemoryResponseStore(ttl=settings.ttl_seconds)
    return DatabaseResponseStore(database, settings.ttl_seconds)


def _identities(config: GatewayConfig) -> Identities:
    changes = None
    if config.redis_url:
        from llm_gateway.store.changes import KeyChanges  # redis-py only when configured

        changes = KeyChanges(config.redis_url.get_secret_value(), config.redis_prefix)
    return Identities(Database(config.database_url.get_secret_value()), config.auth.refresh_seconds, changes)


_CIRCUIT = {Circuit.CLOSED: 0, Circuit.HALF_OPEN: 1, Circuit.OPEN: 2}


def metric_probes(
    catalog: ModelCatalog, health: HealthBoard, governance: GovernanceHook | None, keys: KeyIndex
) -> Probes:
    """What the scrape-time gauges read: deployment health, the spend log, the key index."""

    def deployments() -> list[DeploymentState]:
        now = health.clock()
        return [
            DeploymentState(
                group.name,
                target.key,
                target.provider.name,
                _CIRCUIT[health.of(target).breaker.circuit(now)],
                health.of(target).in_flight,
            )
            for group in catalog.groups
            for target in group.targets
        ]

    spend = governance.spend if governance is not None else None
    return Probes(
        deployments=deployments,
        spend_queue=(lambda: (spend.pending, spend.flush_failures, spend.dropped)) if spend else None,
        key_lookups=lambda: (keys.hits, keys.misses),
    )


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
