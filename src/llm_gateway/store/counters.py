"""Governance counters: rate windows, parallel slots and budgets, behind one interface.

One admission is one atomic step over every scope a request is bound by: each scope's
requests and tokens in the last minute, its running requests and its budget (settled spend
plus outstanding holds) are checked against this request, and the request is counted into
all of them or none. `LocalCounters` does that in one synchronous section (no await
between check and reserve, so no other task interleaves); `RedisCounters`
(`store/redis_counters.py`) in one Lua script over all the scopes' keys.

Rate windows are sliding logs: every admission is an entry with its time, and a request
counts while it is less than `WINDOW` seconds old, so any 60 seconds hold at most `rpm`
requests (no double burst at a window's edge). A TPM entry holds the prompt's estimated
tokens, settled to the real total afterwards. Parallel slots and budget holds are entries
keyed by the admission's id; `settle` releases them (the hold becoming settled spend) once,
however often it is called. Money is counted in integer nano-dollars (`to_nanos`), never
floats.
"""

from __future__ import annotations

import math
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_HALF_EVEN, Decimal
from typing import Literal

WINDOW = 60.0
"""Seconds an admission counts towards `rpm` and `tpm`."""
NANOS_PER_USD = Decimal(1_000_000_000)
Clock = Callable[[], float]
"""Wall-clock seconds (`time.time`); tests inject their own."""


def to_nanos(usd: Decimal, *, up: bool = False) -> int:
    """Dollars as integer nano-dollars; `up` rounds a worst case towards the safe side."""
    return int((usd * NANOS_PER_USD).to_integral_value(ROUND_CEILING if up else ROUND_HALF_EVEN))


def to_usd(nanos: int) -> Decimal:
    return Decimal(nanos) / NANOS_PER_USD


class StoreUnavailable(Exception):
    """The shared store could not be reached; nothing was counted."""


@dataclass(frozen=True, slots=True)
class Quota:
    """One scope's limits as the counters see them. None: no limit of that kind."""

    scope: str
    """`kind:id`, e.g. `key:k-123`, `team:eng`."""
    rpm: int | None = None
    tpm: int | None = None
    max_parallel: int | None = None
    budget: int | None = None
    """Nano-dollars per period."""
    period: str = "all"
    """The budget period's id (`d2024-06-01`, `w2024-W22`, `m2024-06`, `all`): spend is kept
    per period, so a new period starts from zero without anything sweeping the old one."""
    period_ttl: int | None = None
    """Seconds the period's spend is kept (past its end); None: forever."""


@dataclass(slots=True)  # not frozen: one or more a request, at half a frozen __init__'s cost
class Ask:
    """One request's admission: its id (unique per admission, not the client's request id,
    which a client may reuse), the scopes it is bound by, its estimated prompt tokens and the
    worst-case cost it holds against every budget."""

    id: str
    quotas: tuple[Quota, ...]
    tokens: int = 0
    hold: int = 0


@dataclass(slots=True)  # not frozen: one or more a request, at half a frozen __init__'s cost
class Standing:
    """One scope as the admission found it (before counting this request in)."""

    scope: str
    requests: int = 0
    oldest_request: float | None = None
    """When the oldest request in the window was admitted (it leaves `WINDOW` after)."""
    tokens: int = 0
    tokens_fit_at: float | None = None
    """When this request's tokens would fit (`now` if they do; None: they never will)."""
    oldest_tokens: float | None = None
    parallel: int = 0
    spent: int = 0
    held: int = 0


Kind = Literal["budget", "rpm", "tpm", "parallel"]


@dataclass(frozen=True, slots=True)
class Refusal:
    quota: Quota
    kind: Kind
    retry_after: float | None
    """Seconds until the request would fit; None: unknown (parallel) or never (too large)."""


@dataclass(slots=True)  # not frozen: one or more a request, at half a frozen __init__'s cost
class Verdict:
    admitted: bool
    now: float
    standings: tuple[Standing, ...]
    refusal: Refusal | None = None


def refusal_of(ask: Ask, standings: tuple[Standing, ...], now: float) -> Refusal | None:
    """Why `ask` does not fit the scopes as they stand, or None when it fits all of them.

    A budget refusal comes first (it will not lift by waiting a minute); then the rate
    window that frees last, so the retry-after is when every window has room; then a
    parallel limit. Both implementations decide with these same comparisons.
    """
    pairs = list(zip(ask.quotas, standings, strict=True))
    for quota, s in pairs:
        if quota.budget is not None and s.spent + s.held + max(ask.hold, 1) > quota.budget:
            return Refusal(quota, "budget", None)
    rate: list[Refusal] = []
    for quota, s in pairs:
        if quota.rpm is not None and s.requests + 1 > quota.rpm:
            oldest = s.oldest_request if s.oldest_request is not None else now
            rate.append(Refusal(quota, "rpm", max(0.0, oldest + WINDOW - now)))
        if quota.tpm is not None and s.tokens + ask.tokens > quota.tpm:
            fit = s.tokens_fit_at
            rate.append(Refusal(quota, "tpm", None if fit is None else max(0.0, fit - now)))
    if rate:
        return max(rate, key=lambda r: math.inf if r.retry_after is None else r.retry_after)
    for quota, s in pairs:
        if quota.max_parallel is not None and s.parallel + 1 > quota.max_parallel:
            return Refusal(quota, "parallel", None)
    return None


class Counters(ABC):
    """Where admissions are counted. `admit` may raise `StoreUnavailable`; `settle` never
    raises and never blocks (it runs in `on_end`, during cancellation too)."""

    @abstractmethod
    async def admit(self, ask: Ask) -> Verdict:
        """Count `ask` into all its scopes, or into none and say why."""

    @abstractmethod
    def settle(self, ask: Ask, *, tokens: int | None, cost: int | None, refund: bool = False) -> None:
        """The admission is over: free its slots; its hold becomes `cost` nano-dollars of
        spend (None: released, nothing spent); its TPM entry becomes `tokens` (None: kept as
        estimated); `refund` takes its RPM and TPM entries back (refused after admission,
        before any upstream call). Idempotent per `ask.id`."""

    @abstractmethod
    async def standing(self, quota: Quota) -> Standing:
        """One scope as it stands now (for tests, the admin API, headers)."""

    async def ping(self) -> None:  # noqa: B027 (in-process counters are always reachable)
        """Raise `StoreUnavailable` when the store cannot be reached."""

    async def start(self) -> None:
        return None

    async def drain(self) -> None:  # noqa: B027 (in-process settlements apply at once)
        """Wait until every settlement so far is applied."""

    async def aclose(self) -> None:
        return None


class Ledger:
    """Entries that age out in admission order, each with an amount that may change."""

    __slots__ = ("amounts", "entries", "total")

    def __init__(self) -> None:
        self.entries: deque[tuple[float, str]] = deque()
        self.amounts: dict[str, int] = {}
        self.total = 0

    def trim(self, cutoff: float) -> None:
        """Forget entries admitted at or before `cutoff` (they left the window)."""
        entries = self.entries
        while entries and entries[0][0] <= cutoff:
            _, key = entries.popleft()
            self.total -= self.amounts.pop(key, 0)

    def add(self, at: float, key: str, amount: int) -> None:
        self.entries.append((at, key))
        self.amounts[key] = amount
        self.total += amount

    def set(self, key: str, amount: int) -> None:
        if key in self.amounts:
            self.total += amount - self.amounts[key]
            self.amounts[key] = amount

    def remove(self, key: str) -> None:
        self.total -= self.amounts.pop(key, 0)

    def oldest(self) -> float | None:
        for at, key in self.entries:
            if key in self.amounts:
                return at
        return None

    def fit_at(self, amount: int, limit: int, now: float) -> float | None:
        """When `amount` more would fit under `limit`, as entries leave the window."""
        if amount > limit:
            return None
        left = self.total
        if left + amount <= limit:
            return now
        for at, key in self.entries:
            left -= self.amounts.get(key, 0)
            if left + amount <= limit:
                return at + WINDOW
        return now  # unreachable while total counts only these entries


@dataclass(slots=True)
class _Budget:
    spent: int = 0
    holds: dict[str, int] = field(default_factory=dict)
    held: int = 0


@dataclass(slots=True)
class _Scope:
    requests: Ledger = field(default_factory=Ledger)
    tokens: Ledger = field(default_factory=Ledger)
    running: set[str] = field(default_factory=set)


class LocalCounters(Counters):
    """Counters in this process's memory: exact for one process, shared with no other.

    Slots and holds need no expiry here: they live and die with the process that took them,
    and `on_end` releases them on every exit path. Scopes idle for a window are dropped
    when their counters are back to zero. Settlement is idempotent through the set of
    admissions not settled yet: what is kept per admission ends with it (remembering every
    settled id for ten minutes was some 8 MiB at 90 governed requests a second, issue #14).
    """

    def __init__(self, clock: Clock = time.time) -> None:
        self._clock = clock
        self._scopes: dict[str, _Scope] = {}
        self._budgets: dict[tuple[str, str], _Budget] = {}
        self._open: set[str] = set()
        """Ids of the admissions counted in and not settled yet."""

    async def admit(self, ask: Ask) -> Verdict:
        # One synchronous section: nothing between the check and the counting awaits.
        now = self._clock()
        standings = tuple(self._stand(quota, ask.tokens, now) for quota in ask.quotas)
        refusal = refusal_of(ask, standings, now)
        if refusal is not None:
            return Verdict(False, now, standings, refusal)
        scopes, budgets = self._scopes, self._budgets
        for quota in ask.quotas:
            scope = scopes.get(quota.scope)
            if scope is None:  # not `setdefault(..., _Scope())`: that builds one every time
                scope = scopes[quota.scope] = _Scope()
            if quota.rpm is not None:
                scope.requests.add(now, ask.id, 1)
            if quota.tpm is not None:
                scope.tokens.add(now, ask.id, ask.tokens)
            if quota.max_parallel is not None:
                scope.running.add(ask.id)
            if quota.budget is not None:
                budget = budgets.get((quota.scope, quota.period))
                if budget is None:
                    budget = budgets[(quota.scope, quota.period)] = _Budget()
                budget.holds[ask.id] = ask.hold
                budget.held += ask.hold
        self._open.add(ask.id)
        return Verdict(True, now, standings)

    def _stand(self, quota: Quota, tokens: int, now: float) -> Standing:
        scope = self._scopes.get(quota.scope)
        budget = self._budgets.get((quota.scope, quota.period))
        spent, held = (0, 0) if budget is None else (budget.spent, budget.held)
        if scope is None:
            fit = now if quota.tpm is None or tokens <= quota.tpm else None
            return Standing(quota.scope, tokens_fit_at=fit, spent=spent, held=held)
        scope.requests.trim(now - WINDOW)
        scope.tokens.trim(now - WINDOW)
        return Standing(
            quota.scope,
            requests=scope.requests.total,
            oldest_request=scope.requests.oldest(),
            tokens=scope.tokens.total,
            tokens_fit_at=scope.tokens.fit_at(tokens, quota.tpm, now) if quota.tpm is not None else now,
            oldest_tokens=scope.tokens.oldest(),
            parallel=len(scope.running),
            spent=spent,
            held=held,
        )

    def settle(self, ask: Ask, *, tokens: int | None, cost: int | None, refund: bool = False) -> None:
        if ask.id not in self._open:
            return  # settled already, or never counted in here
        self._open.discard(ask.id)
        now = self._clock()
        for quota in ask.quotas:
            scope = self._scopes.get(quota.scope)
            if scope is not None:
                scope.running.discard(ask.id)
                if refund:
                    scope.requests.remove(ask.id)
                    scope.tokens.remove(ask.id)
                elif tokens is not None:
                    scope.tokens.set(ask.id, tokens)
                self._drop_if_idle(quota.scope, scope, now)
            budget = self._budgets.get((quota.scope, quota.period))
            if budget is not None:
                budget.held -= budget.holds.pop(ask.id, 0)
                if cost is not None and quota.budget is not None:
                    budget.spent += cost

    def _drop_if_idle(self, name: str, scope: _Scope, now: float) -> None:
        scope.requests.trim(now - WINDOW)
        scope.tokens.trim(now - WINDOW)
        if not (scope.running or scope.requests.amounts or scope.tokens.amounts):
            del self._scopes[name]

    async def standing(self, quota: Quota) -> Standing:
        return self._stand(quota, 0, self._clock())
