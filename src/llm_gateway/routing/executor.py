"""The attempt loop: pick a deployment, call it, retry or fall back, and report who served.

For one request: try the model's group (up to `max_attempts`, each retry on another
healthy deployment where one exists, waiting with backoff only to retry the same one),
then its fallback models in order; all within one deadline. Streams are opened and their
first chunk awaited here, so a failure before any byte reaches the client is still an
ordinary error (a proper HTTP status) and can be retried; this is the only place that
peeks at a stream. After the first chunk a stream is the client's: see `relay.py`.

On the success path this costs a filter over the group's deployments, one strategy pick,
one deadline timer and a few counter updates: no tasks, no I/O. Tasks are made only to
hedge, which is opt-in per model.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from bisect import bisect
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from llm_gateway.core.capabilities import Capability
from llm_gateway.core.errors import (
    AllDeploymentsFailed,
    InvalidRequest,
    NoDeploymentAvailable,
    ProviderError,
    UpstreamOverloaded,
    UpstreamTimeout,
    is_retryable,
)
from llm_gateway.routing.breaker import Circuit
from llm_gateway.routing.capacity import tokens_used
from llm_gateway.routing.deployments import Group, ModelCatalog, Target
from llm_gateway.routing.fallbacks import continues, fallback_chain
from llm_gateway.routing.health import DeploymentHealth, HealthBoard
from llm_gateway.routing.hedge import race
from llm_gateway.routing.observers import AttemptObserver, AttemptReport, Outcome
from llm_gateway.routing.relay import close, guarded
from llm_gateway.routing.retry import retry_delay
from llm_gateway.routing.strategies import STRATEGIES

T = TypeVar("T")
C = TypeVar("C")

Run = Callable[[Target, Group, "_Budget", Any, bool], Coroutine[Any, Any, Any]]
"""One attempt at one deployment, with health accounting: `_call_one` or `_open_one`."""


@dataclass(slots=True)
class Served(Generic[T]):
    """A result, the deployment that produced it, and how it came to."""

    value: T
    target: Target
    attempts: int = 1
    fallback: str | None = None
    """The model that served, when it is a fallback of the one requested."""
    hedged: bool = False
    """A hedge (the second of two racing attempts) produced the result."""


@dataclass(slots=True)
class _Budget:
    deadline: float
    retries: bool
    attempts: int = 0
    causes: list[ProviderError] = field(default_factory=list)


async def _keep(value: object) -> None:
    return None


class Executor:
    """Routes attempts over model groups. One per process; the state lives in `health`."""

    def __init__(
        self,
        rng: random.Random | None = None,
        *,
        catalog: ModelCatalog | None = None,
        health: HealthBoard | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        observers: Sequence[AttemptObserver] = (),
    ) -> None:
        self._rng = rng or random.Random()
        self._observers = tuple(observers)
        self._catalog = catalog
        self.health = health or HealthBoard(clock=clock)
        self._clock = clock
        self._sleep = sleep
        self._by_group: dict[
            tuple[str, Capability], tuple[tuple[Target, ...], tuple[DeploymentHealth, ...]]
        ] = {}

    async def call(
        self,
        group: Group,
        attempt: Callable[[Target], Awaitable[T]],
        *,
        fallbacks: Sequence[str] | None = None,
        retries: bool = True,
        deadline: float | None = None,
    ) -> Served[T]:
        """Run `attempt` on deployments of `group` (then its fallbacks) until one succeeds.

        `fallbacks` replaces the group's configured `fallbacks` (a client's own list);
        `retries=False` makes exactly one attempt: no retry, fallback or hedge; `deadline`
        (absolute, on this executor's clock) narrows the model's own. When every attempt
        fails, raises `AllDeploymentsFailed` carrying the attempts made and each cause.
        """

        return await self._serve(group, attempt, fallbacks, retries, deadline, streaming=False)

    async def open_stream(
        self,
        group: Group,
        attempt: Callable[[Target], AsyncIterator[C]],
        *,
        fallbacks: Sequence[str] | None = None,
        retries: bool = True,
        deadline: float | None = None,
    ) -> Served[AsyncIterator[C]]:
        """Like `call`, for a stream: an attempt succeeds when its first chunk arrives."""

        return await self._serve(group, attempt, fallbacks, retries, deadline, streaming=True)

    async def _serve(
        self,
        group: Group,
        attempt: Callable[[Target], Any],
        requested: Sequence[str] | None,
        retries: bool,
        deadline: float | None,
        *,
        streaming: bool,
    ) -> Served[Any]:
        own = self._clock() + group.policy.deadline
        budget = _Budget(own if deadline is None else min(own, deadline), retries)
        try:
            return await self._try_group(group, attempt, budget, streaming)
        except ProviderError as error:
            last = error
        catalog = self._catalog
        chain = fallback_chain(group, last, requested) if retries and catalog is not None else ()
        for name in chain:
            if catalog is None or budget.deadline <= self._clock():
                break
            try:
                other = catalog.resolve(name, group.requires)
            except InvalidRequest:  # that model has no deployment able to serve this operation
                continue
            try:
                served = await self._try_group(other, attempt, budget, streaming)
            except ProviderError as error:
                last = error
                if continues(error):
                    continue
                break
            served.fallback = other.name
            return served
        raise _failed(last, budget)

    async def _try_group(
        self, group: Group, attempt: Callable[[Target], Any], budget: _Budget, streaming: bool
    ) -> Served[Any]:
        policy = group.policy
        run: Run = self._open_one if streaming else self._call_one
        limit = policy.max_attempts if budget.retries else 1
        tried: list[str] = []
        last: ProviderError | None = None
        while len(tried) < limit:
            target = self._pick(group, tried)
            if target is None:
                raise last or self._no_deployment(group)
            remaining = budget.deadline - self._clock()
            if target.key in tried and last is not None:
                delay = retry_delay(
                    len(tried),
                    last,
                    base=policy.backoff_base,
                    cap=policy.backoff_max,
                    rng=self._rng,
                    remaining=remaining,
                )
                if delay is None:
                    raise last
                await self._sleep(delay)
            elif remaining <= 0:
                raise last or self._deadline_passed(group)
            if self.health.of(target).breaker.state is not Circuit.CLOSED and not await self._admit(target):
                continue
            room_for_two = budget.retries and limit - len(tried) >= 2
            hedge = self._hedge_delay(group, streaming) if room_for_two else None
            try:
                if hedge is not None:
                    return await self._hedged(group, target, tried, limit, run, attempt, budget, hedge)
                tried.append(target.key)
                budget.attempts += 1
                return Served(await run(target, group, budget, attempt, False), target, budget.attempts)
            except ProviderError as error:
                budget.causes.append(error)
                if not is_retryable(error):
                    raise
                last = error
        assert last is not None
        raise last

    def _healths(self, group: Group) -> tuple[DeploymentHealth, ...]:
        """The group's deployments' health, looked up once per group rather than per request."""
        key = (group.name, group.requires)
        entry = self._by_group.get(key)
        if entry is None or entry[0] is not group.targets:
            healths = tuple(self.health.of(t) for t in group.targets)
            entry = self._by_group[key] = (group.targets, healths)
        return entry[1]

    def _candidates(self, group: Group, tried: list[str], *, closed_only: bool = False) -> Sequence[Target]:
        """Deployments that may take the next attempt: healthy, with room, untried if possible."""
        healths = self._healths(group)
        if not tried and all(h.capacity is None and h.breaker.state is Circuit.CLOSED for h in healths):
            return group.targets
        now = self._clock()
        admitted = [h.target for h in healths if h.admits(now)]
        if closed_only:
            admitted = [t for t in admitted if self.health.of(t).breaker.state is Circuit.CLOSED]
        if not tried:
            return admitted
        fresh = [t for t in admitted if t.key not in tried]
        return fresh or ([] if closed_only else admitted)

    def _pick(self, group: Group, tried: list[str], *, closed_only: bool = False) -> Target | None:
        candidates = self._candidates(group, tried, closed_only=closed_only)
        if len(candidates) < 2:
            return candidates[0] if candidates else None
        strategy = group.policy.strategy
        if candidates is group.targets and strategy == "weighted":
            weights = group.cum_weights
            chosen: Target = candidates[bisect(weights, self._rng.random() * weights[-1])]
            return chosen
        return STRATEGIES[strategy](candidates, self.health, self._rng)

    async def _admit(self, target: Target) -> bool:
        """Closed: go. Half-open: only as the probe, claimed here and, if shared, across instances."""
        breaker = self.health.of(target).breaker
        if breaker.state is Circuit.CLOSED:
            return True
        if not breaker.claim_probe(self._clock()):
            return False
        claim = self.health.claim_probe
        if claim is not None and not await claim(target.key, self.health.settings.cooldown):
            breaker.release_probe()
            self.health.reopen_soon(target, self.health.settings.cooldown)
            return False
        return True

    def _hedge_delay(self, group: Group, streaming: bool) -> float | None:
        policy = group.policy
        if len(group.targets) < 2:
            return None
        if policy.hedge_after_ms is not None:
            return policy.hedge_after_ms / 1000
        if group.hedge_quantile is not None:
            return self.health.window(group, streaming).quantile(group.hedge_quantile)
        return None

    async def _hedged(
        self,
        group: Group,
        target: Target,
        tried: list[str],
        limit: int,
        run: Run,
        attempt: Callable[[Target], Any],
        budget: _Budget,
        delay: float,
    ) -> Served[Any]:
        """The attempt on `target`, raced after `delay` by one on another closed deployment."""
        chosen = [target]
        tried.append(target.key)
        budget.attempts += 1

        def backup() -> Coroutine[Any, Any, Any] | None:
            other = self._pick(group, tried, closed_only=True)
            if other is None or len(tried) >= limit or budget.deadline <= self._clock():
                return None
            chosen.append(other)
            tried.append(other.key)
            budget.attempts += 1
            return run(other, group, budget, attempt, True)

        discard = close if run == self._open_one else _keep
        won = await race(lambda: run(target, group, budget, attempt, False), backup, delay, discard)
        served_by = chosen[1] if won.hedged else chosen[0]
        return Served(won.value, served_by, budget.attempts, hedged=won.hedged)

    async def _call_one(
        self,
        target: Target,
        group: Group,
        budget: _Budget,
        attempt: Callable[[Target], Awaitable[T]],
        hedge: bool,
    ) -> T:
        health = self.health.of(target)
        clock = self._clock
        started = clock()
        number = budget.attempts
        health.begin(started)
        remaining = budget.deadline - started
        try:
            if remaining < target.time_limit:
                async with asyncio.timeout(remaining):
                    value = await attempt(target)
            else:  # the provider's own timeout ends the attempt first: no timer needed
                value = await attempt(target)
        except ProviderError as error:
            health.failed(clock(), clock() - started, error)
            health.end(clock())
            self._report(group, target, number, hedge, Outcome.FAILED, clock() - started, None, error)
            raise
        except TimeoutError:
            timeout = UpstreamTimeout(
                f"upstream provider {target.provider.name!r} did not answer before the request deadline",
                provider=target.provider.name,
            )
            health.failed(clock(), clock() - started, timeout)
            health.end(clock())
            self._report(group, target, number, hedge, Outcome.FAILED, clock() - started, None, timeout)
            raise timeout from None
        except BaseException:
            health.abandoned(clock(), clock() - started, False)
            health.end(clock())
            self._report(group, target, number, hedge, Outcome.ABANDONED, clock() - started, None, None)
            raise
        now = clock()
        health.answered(now, now - started)
        if group.hedge_quantile is not None:
            self.health.window(group, False).add(now - started)
        health.end(now, tokens_used(value) if health.capacity is not None else 0)
        self._report(group, target, number, hedge, Outcome.ANSWERED, now - started, None, None)
        return value

    async def _open_one(
        self,
        target: Target,
        group: Group,
        budget: _Budget,
        attempt: Callable[[Target], AsyncIterator[C]],
        hedge: bool,
    ) -> AsyncIterator[C]:
        health = self.health.of(target)
        now = self._clock()
        idle = group.policy.stream_idle_timeout
        remaining = budget.deadline - now
        number = budget.attempts
        health.begin(now)
        try:
            stream = attempt(target)
        except BaseException:
            health.abandoned(now, 0.0, False)
            health.end(now)
            raise
        window = self.health.window(group, True) if group.hedge_quantile is not None else None
        first_limit: float | None = min(remaining, idle) if idle is not None else remaining
        if idle is None and remaining >= target.time_limit:
            first_limit = None  # the provider's read timeout ends a silent attempt first

        def report(
            outcome: Outcome, elapsed: float, first: float | None, error: ProviderError | None
        ) -> None:
            self._report(group, target, number, hedge, outcome, elapsed, first, error, streaming=True)

        rest = guarded(
            stream,
            health,
            clock=self._clock,
            first_limit=first_limit,
            idle=idle,
            window=window,
            report=report if self._observers else None,
        )
        await rest.__anext__()  # the first chunk: yielded once more to the reader
        return rest

    def _report(
        self,
        group: Group,
        target: Target,
        number: int,
        hedge: bool,
        outcome: Outcome,
        elapsed: float,
        first_chunk: float | None,
        error: ProviderError | None,
        *,
        streaming: bool = False,
    ) -> None:
        if not self._observers:
            return
        report = AttemptReport(
            group=group.name,
            deployment=target.key,
            provider=target.provider.name,
            model=target.model,
            number=number,
            outcome=outcome,
            latency=elapsed,
            first_chunk=first_chunk,
            streaming=streaming,
            hedge=hedge,
            error=error,
        )
        for observer in self._observers:
            observer.on_attempt(report)

    def _no_deployment(self, group: Group) -> NoDeploymentAvailable:
        """Every deployment is cooling down. Unless a fallback serves, the client gets the
        failure that opened the most recent circuit (a bad upstream key stays a 401, an outage
        a 502), saying so, with a retry-after for the first circuit to half-open."""
        now = self._clock()
        cooling = [
            self.health.of(t) for t in group.targets if self.health.of(t).breaker.state is Circuit.OPEN
        ]
        wait = max(min(h.breaker.until for h in cooling) - now, 1.0) if cooling else 1.0
        retry_after = str(math.ceil(wait))
        causes = [h for h in cooling if h.last_error is not None]
        if not causes:
            overloaded = UpstreamOverloaded(
                f"no healthy deployment of model {group.name!r} can take the request now",
                code="no_healthy_deployment",
                retry_after=wait,
            )
            return NoDeploymentAvailable(overloaded, attempts=0)
        cause = max(causes, key=lambda h: h.breaker.opened_at).last_error
        assert cause is not None
        message = (
            f"{cause.message} (every deployment of model {group.name!r} is cooling down after "
            f"failures like this one; retry in {retry_after} s)"
        )
        return NoDeploymentAvailable(cause, attempts=0, message=message, headers={"retry-after": retry_after})

    def _deadline_passed(self, group: Group) -> UpstreamTimeout:
        return UpstreamTimeout(f"model {group.name!r}: the request deadline passed before an attempt")


def _failed(last: ProviderError, budget: _Budget) -> AllDeploymentsFailed:
    """The one error a failed request raises: a new aggregate, so no cause is ever mutated."""
    if isinstance(last, AllDeploymentsFailed):
        cause, message, headers = last.cause, last.message, last.headers
    else:
        cause, message, headers = last, None, None
    return AllDeploymentsFailed(
        cause, attempts=budget.attempts, causes=budget.causes, message=message, headers=headers
    )
