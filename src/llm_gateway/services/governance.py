"""The governance hook: rate limits, parallel slots and budgets around every call, and the
spend log after it. First in the chain, so nothing a later hook does runs unadmitted.

    before   scopes (the principal's, its end user's, the configured ones) → one atomic admission over
             all of them (requests, estimated prompt tokens, a slot, the worst-case cost as a
             hold) → 429 / 402 naming the scope, or admitted; headers either way
    on_end   settle: the slot freed, the hold turned into the real cost (or released), the
             TPM entry set to the real tokens; a spend row queued, with the request's
             attempts (gathered by `services/attempt_log.py`). Synchronous: no await.

Requests refused here, or by a later hook before any upstream call, consume nothing. When
the counters' store is unreachable the hook refuses (503, `fail_closed`, the default) or
lets requests through uncounted (`fail_open`); either way it logs and `/ready` says so.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from llm_gateway.core.config import GatewayConfig
from llm_gateway.core.context import Call, Limits, Principal, RequestContext, Scope
from llm_gateway.core.errors import (
    AllDeploymentsFailed,
    CallerError,
    GatewayError,
    GovernanceUnavailable,
    LimitExceeded,
    PermissionDenied,
    PolicyError,
)
from llm_gateway.core.governance_config import GovernanceSettings, ScopeSettings
from llm_gateway.core.types import Usage
from llm_gateway.observability.redaction import Redactor, config_secrets
from llm_gateway.routing.deployments import ModelCatalog
from llm_gateway.routing.observers import AttemptReport
from llm_gateway.services.attempt_log import begin, records
from llm_gateway.services.costing import (
    Costing,
    PricedCosting,
    PromptTokens,
    counted_prompt_tokens,
    tokens_of,
)
from llm_gateway.services.endusers import end_user, end_user_scopes
from llm_gateway.services.hooks import Answer, Hook
from llm_gateway.services.pricing import PriceBook
from llm_gateway.services.quotas import DAY, governs, limit_headers, quota_of, refusal_error, scope_of
from llm_gateway.services.tokens import build_encoding, has_encoding
from llm_gateway.store.counters import (
    Ask,
    Clock,
    Counters,
    LocalCounters,
    Quota,
    StoreUnavailable,
    to_nanos,
    to_usd,
)
from llm_gateway.store.db import Database
from llm_gateway.store.ids import IdSource
from llm_gateway.store.spend import JsonLinesSink, MemorySink, SpendLog, SpendRow, SpendSink
from llm_gateway.store.spend_db import DatabaseSink

log = logging.getLogger("llm_gateway.governance")

EXTRAS_KEY = "governance"


@dataclass(slots=True)
class Admitted:
    """What `before` leaves in `ctx.extras` for `on_end`: None `ask` when nothing is counted
    (no limits apply, or the store was down and the hook failed open)."""

    ask: Ask | None
    prompt_tokens: int | None
    attempts: list[AttemptReport] | None = None
    """The request's upstream attempts as they are reported (`services/attempt_log.py`);
    None when there is no spend log to write them to."""
    capture: bool = False
    """The key or team asks for its bodies in the request log (`log_bodies` metadata)."""
    answer: Any = None
    """The (non-streamed) answer, kept for the row when `capture`."""


@dataclass(frozen=True, slots=True)
class Plan:
    """What `before` needs of one principal on one UTC day, worked out on its first request
    of the day rather than on every one: its governed scopes (key, team, configured; each
    once), their quotas, and whether prompt tokens must be counted and a hold sized. A
    principal is built once when the key index loads, so a changed key is another principal
    and gets its own plan. Not used when a scope limits end users (those depend on the body)."""

    principal: Principal
    day: int
    scopes: tuple[Scope, ...]
    quotas: tuple[Quota, ...]
    needs_tokens: bool
    holds: bool
    limits_end_users: bool


MAX_PLANS = 4096
"""Principals whose plans are kept; past it the plans are dropped and made again."""


def static_scope(settings: ScopeSettings) -> Scope:
    limits = Limits(
        rpm=settings.rpm,
        tpm=settings.tpm,
        max_parallel=settings.max_parallel,
        budget_usd=settings.budget_usd,
        budget_period=settings.budget_period,
        max_hold_usd=settings.max_hold_usd,
    )
    return Scope(settings.kind, settings.id, settings.name, limits)


class GovernanceHook(Hook):
    name = "governance"

    def __init__(
        self,
        settings: GovernanceSettings,
        counters: Counters,
        costing: Costing,
        catalog: ModelCatalog,
        spend: SpendLog | None = None,
        *,
        prompt_tokens: PromptTokens = counted_prompt_tokens,
        clock: Clock = time.time,
    ) -> None:
        self.settings = settings
        self.counters = counters
        self.costing = costing
        self.spend = spend
        self._catalog = catalog
        self._prompt_tokens = prompt_tokens
        self._clock = clock
        self._static = tuple(static_scope(s) for s in settings.scopes)
        self._plans: dict[int, Plan] = {}
        self._ids = IdSource()
        """Admission ids and spend rows' ids (`store/ids.py`)."""
        self.capture_bodies = isinstance(getattr(spend, "sink", None), DatabaseSink)
        """Bodies are kept only where they can be redacted and expire: the database sink."""
        self.store_error: str | None = None
        """The last store failure, until an admission succeeds again (for `/ready`)."""

    def scopes(self, ctx: RequestContext, call: Call) -> tuple[Scope, ...]:
        """Every scope with a limit that binds this request, each once: key, team, end user
        (where the team budgets its end users), configured."""
        seen: dict[tuple[str, str], Scope] = {}
        principal = ctx.principal
        users = end_user_scopes(principal, call)
        for scope in (*principal.scopes, *users, *self._static):
            if governs(scope):
                seen.setdefault((scope.kind, scope.id), scope)
        return tuple(seen.values())

    def plan(self, principal: Principal, now: float) -> Plan:
        """The principal's `Plan` for the UTC day `now` falls in (see `Plan`)."""
        day = int(now // DAY)
        plan = self._plans.get(id(principal))
        if plan is not None and plan.principal is principal and plan.day == day:
            return plan
        seen: dict[tuple[str, str], Scope] = {}
        for scope in (*principal.scopes, *self._static):
            if governs(scope):
                seen.setdefault((scope.kind, scope.id), scope)
        scopes = tuple(seen.values())
        quotas = tuple(quota_of(scope, now) for scope in scopes)
        plan = Plan(
            principal,
            day,
            scopes,
            quotas,
            needs_tokens=any(q.tpm is not None or q.budget is not None for q in quotas),
            holds=any(q.budget is not None for q in quotas),
            limits_end_users=any(scope.end_users is not None for scope in principal.scopes),
        )
        if len(self._plans) >= MAX_PLANS:
            self._plans.clear()
        self._plans[id(principal)] = plan
        return plan

    def _scopes_and_quotas(
        self, ctx: RequestContext, call: Call, now: float
    ) -> tuple[tuple[Scope, ...], tuple[Quota, ...], bool, bool]:
        """The request's scopes (as `scopes`), their quotas, whether tokens are counted and
        whether a hold is sized: from the principal's plan unless an end user is limited."""
        plan = self.plan(ctx.principal, now)
        if not plan.limits_end_users:
            return plan.scopes, plan.quotas, plan.needs_tokens, plan.holds
        scopes = self.scopes(ctx, call)
        quotas = tuple(quota_of(scope, now) for scope in scopes)
        needs_tokens = any(q.tpm is not None or q.budget is not None for q in quotas)
        return scopes, quotas, needs_tokens, any(q.budget is not None for q in quotas)

    async def before(self, ctx: RequestContext, call: Call) -> Answer | None:
        attempts = begin() if self.spend is not None else None
        now = self._clock()
        scopes, quotas, needs_tokens, holds = self._scopes_and_quotas(ctx, call, now)
        if not scopes:
            ctx.extras[EXTRAS_KEY] = Admitted(None, None, attempts, self._captures(ctx))
            return None
        if needs_tokens and not has_encoding(call.model or ""):
            await build_encoding(call.model or "")  # once per encoding, off the event loop
        tokens = self._prompt_tokens(call) if needs_tokens else 0
        hold = self._hold(ctx, call, scopes, tokens) if holds else 0
        ask = Ask(self._ids(), quotas, tokens, hold)
        try:
            verdict = await self.counters.admit(ask)
        except StoreUnavailable as exc:
            self._store_down(ctx, exc, attempts)
            return None
        self.store_error = None
        ctx.headers.extend(limit_headers(ask, verdict))
        if verdict.refusal is not None:
            raise refusal_error(verdict.refusal, scope_of(verdict.refusal.quota, scopes), verdict.now)
        if not verdict.admitted:  # the store refused without a reason this side can name
            raise LimitExceeded("refused by the rate limits", headers={"retry-after": "1"})
        ctx.extras[EXTRAS_KEY] = Admitted(ask, tokens, attempts, self._captures(ctx))
        return None

    def _captures(self, ctx: RequestContext) -> bool:
        """Whether the caller's key or team has `log_bodies: true` in its metadata (and
        there is a database spend log to keep them in)."""
        if not self.capture_bodies:
            return False
        principal = ctx.principal
        if principal.metadata.get("log_bodies") is True:
            return True
        return any(scope.metadata.get("log_bodies") is True for scope in principal.scopes)

    async def after(self, ctx: RequestContext, call: Call, value: Any) -> Any:
        admitted = ctx.extras.get(EXTRAS_KEY)
        if isinstance(admitted, Admitted) and admitted.capture:
            admitted.answer = value
        return value

    def _hold(self, ctx: RequestContext, call: Call, scopes: tuple[Scope, ...], tokens: int) -> int:
        """The worst-case cost held against every budget, in nano-dollars."""
        groups = [self._catalog.group(call.model or "")]
        groups += [self._catalog.group(name) for name in ctx.fallbacks or ()]
        worst = Decimal(0)
        for group in groups:
            estimate = self.costing.estimate(call, group, tokens)
            if estimate is None:
                if self.settings.unpriced == "refuse":
                    raise PermissionDenied(
                        f"model {group.name!r} has no price, so a budget cannot cover it",
                        code="model_unpriced",
                    )
                return 0
            worst = max(worst, estimate)
        caps = [s.limits.max_hold_usd for s in scopes if s.limits.max_hold_usd is not None]
        return to_nanos(min([worst, *caps]), up=True)

    def _store_down(
        self, ctx: RequestContext, exc: StoreUnavailable, attempts: list[AttemptReport] | None
    ) -> None:
        self.store_error = str(exc)
        if self.settings.on_store_error == "fail_open":
            log.warning(
                "governance store unreachable (%s): request %s is let through uncounted", exc, ctx.request_id
            )
            ctx.extras[EXTRAS_KEY] = Admitted(None, None, attempts, self._captures(ctx))
            return
        log.error("governance store unreachable (%s): request %s refused", exc, ctx.request_id)
        raise GovernanceUnavailable("rate limits and budgets cannot be checked right now; retry shortly")

    def on_end(
        self, ctx: RequestContext, call: Call, usage: Usage | None, error: BaseException | None
    ) -> None:
        admitted = ctx.extras.pop(EXTRAS_KEY, None)
        if not isinstance(admitted, Admitted):
            return  # refused here: nothing was counted, nothing to log
        cost = ctx.cost = Decimal(0) if ctx.cache == "hit" else self.costing.cost(ctx)
        if admitted.ask is not None:
            refund = isinstance(error, PolicyError | CallerError) and ctx.route is None and usage is None
            served = usage is not None or ctx.first_chunk_at is not None
            tokens = int(usage.get("total_tokens") or sum(tokens_of(usage)[:2])) if usage else None
            self.counters.settle(
                admitted.ask,
                tokens=tokens if tokens is not None else (None if served else 0),
                cost=None if cost is None else to_nanos(cost),
                refund=refund,
            )
        if self.spend is not None:
            self.spend.put(self._row(ctx, call, usage, error, cost, admitted))

    def _row(
        self,
        ctx: RequestContext,
        call: Call,
        usage: Usage | None,
        error: BaseException | None,
        cost: Decimal | None,
        admitted: Admitted,
    ) -> SpendRow:
        now = time.monotonic()
        estimate = admitted.prompt_tokens
        principal, route = ctx.principal, ctx.route
        prompt, completion, cached, reasoning = tokens_of(usage) if usage else (estimate or 0, 0, 0, 0)
        attempts = (
            route.attempts if route else (error.attempts if isinstance(error, AllDeploymentsFailed) else 0)
        )
        return SpendRow(
            at=datetime.fromtimestamp(time.time() - (now - ctx.started), UTC),
            request_id=ctx.request_id,
            key_id=principal.key_id,
            team_id=principal.team_id,
            end_user=end_user(principal, call),
            model=call.model,
            deployment=route.deployment if route else None,
            provider=route.provider if route else None,
            prompt_tokens=prompt,
            completion_tokens=completion,
            cached_tokens=cached,
            reasoning_tokens=reasoning,
            cost_usd=cost,
            estimated=usage is None or ctx.usage_estimated,
            latency_s=now - ctx.started,
            ttft_s=None if ctx.first_chunk_at is None else ctx.first_chunk_at - ctx.started,
            status=status_of(error),
            error=None if error is None else type(error).__name__,
            attempts=attempts,
            fallback=route.fallback if route else None,
            operation=str(call.operation),
            stream=call.stream,
            cache=ctx.cache,
            cache_saved_usd=ctx.cache_saved_usd,
            template_id=ctx.template[0] if ctx.template else None,
            template_version=ctx.template[1] if ctx.template else None,
            attempt_log=records(admitted.attempts) if admitted.attempts else (),
            bodies=(call.body, admitted.answer) if admitted.capture else None,
            row_id=self._ids(),
        )

    async def spent_usd(self, scope: Scope) -> Decimal | None:
        """Settled spend in the scope's current budget period (the `SpendView` `/v1/me` reads):
        None when the scope has no budget (nothing is counted) or the store is unreachable."""
        if scope.limits.budget_usd is None:
            return None
        try:
            standing = await self.counters.standing(quota_of(scope, self._clock()))
        except StoreUnavailable as exc:
            log.warning(
                "governance store unreachable (%s): spend of %s:%s unknown", exc, scope.kind, scope.id
            )
            return None
        return to_usd(standing.spent)

    async def readiness(self) -> tuple[bool, str]:
        """Whether requests can be governed now, and a line for `/ready`."""
        try:
            await self.counters.ping()
        except StoreUnavailable as exc:
            self.store_error = str(exc)
        else:
            self.store_error = None
        if self.store_error is None:
            return True, "ok"
        if self.settings.on_store_error == "fail_open":
            return True, f"store unreachable, failing open (requests are not counted): {self.store_error}"
        return False, f"store unreachable, failing closed (requests are refused): {self.store_error}"

    async def start(self) -> None:
        await self.counters.start()
        if self.spend is not None:
            await self.spend.start()

    async def aclose(self) -> None:
        await self.counters.aclose()
        if self.spend is not None:
            await self.spend.stop()


def status_of(error: BaseException | None) -> int:
    if error is None:
        return 200
    if isinstance(error, GatewayError):
        return error.status_code
    if isinstance(error, BaseException) and not isinstance(error, Exception):
        return 499  # cancelled: the client went away
    return 500


def build_governance(
    config: GatewayConfig,
    catalog: ModelCatalog,
    database: Database | None = None,
    previous: GovernanceHook | None = None,
) -> GovernanceHook | None:
    """The hook that enforces scopes' limits and budgets, counting in Redis when `redis_url`
    is set: built when `governance:` is configured or a master key is (virtual keys, which
    carry limits, need one), with `governance:`'s defaults in the latter case. `database`
    is the gateway's (shared with the identities), for `spend_log.sink: database`; without
    one that sink falls back to memory. `previous` (a reloaded config's hook) hands over its
    counters and spend log, so a reload neither resets a limit nor loses a row."""
    settings = config.governance
    if settings is None:
        if config.master_key is None:
            return None
        settings = GovernanceSettings()
    if previous is not None:
        costing = PricedCosting(PriceBook(config), catalog, settings.default_max_output_tokens)
        return GovernanceHook(
            settings, previous.counters, costing, catalog, previous.spend, prompt_tokens=counted_prompt_tokens
        )
    counters: Counters = LocalCounters()
    if config.redis_url:
        from llm_gateway.store.redis_counters import RedisCounters  # redis-py only when configured

        counters = RedisCounters(
            config.redis_url.get_secret_value(), config.redis_prefix, lease_ttl=settings.lease_ttl
        )
    spend = settings.spend_log
    sink: SpendSink
    if spend.sink == "jsonl" and spend.path:
        sink = JsonLinesSink(spend.path)
    elif spend.sink == "database" and database is not None:
        sink = DatabaseSink(
            database,
            redact=Redactor(config_secrets(config)),
            max_body_bytes=spend.max_body_bytes,
            body_retention_days=spend.body_retention_days,
        )
    else:
        sink = MemorySink()
    spend_log = SpendLog(
        sink,
        batch_size=spend.batch_size,
        flush_interval=spend.flush_interval,
        max_queue=spend.max_queue,
        retention_days=spend.retention_days if isinstance(sink, DatabaseSink) else None,
    )
    costing = PricedCosting(PriceBook(config), catalog, settings.default_max_output_tokens)
    return GovernanceHook(
        settings, counters, costing, catalog, spend_log, prompt_tokens=counted_prompt_tokens
    )
