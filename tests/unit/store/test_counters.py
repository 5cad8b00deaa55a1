"""The governance counters (store/counters.py, store/redis_counters.py), one suite run against
the in-process implementation and a real Redis: sliding windows exact at their edges (an
injected clock), all-or-nothing admission over several scopes, slots, holds and their
settlement (idempotent), budget periods, and concurrent admissions that cannot overrun."""

from __future__ import annotations

import asyncio
import tracemalloc
import uuid
from collections.abc import AsyncIterator, Callable

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError

from llm_gateway.store.counters import WINDOW, Ask, Counters, LocalCounters, Quota, StoreUnavailable
from llm_gateway.store.redis_counters import RedisCounters

T0 = 1_750_000_000.0


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


Make = Callable[[], Counters]


@pytest.fixture(params=["local", "redis"])
async def make(request: pytest.FixtureRequest, clock: Clock) -> AsyncIterator[Make]:
    """Builds counters over one shared state: in-process ones share the one instance, Redis
    ones a per-test key prefix (several instances, as several gateways would be)."""
    if request.param == "local":
        local = LocalCounters(clock)
        yield lambda: local
        return
    url = request.getfixturevalue("redis_url")
    prefix = f"test-{uuid.uuid4().hex[:8]}:"
    made: list[RedisCounters] = []

    def build() -> Counters:
        counters = RedisCounters(url, prefix, lease_ttl=30, clock=clock)
        made.append(counters)
        return counters

    yield build
    for counters in made:
        await counters.aclose()
    client = aioredis.from_url(url)
    keys = [key async for key in client.scan_iter(f"{prefix}*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


@pytest.fixture
def clock() -> Clock:
    return Clock()


def ask(*quotas: Quota, tokens: int = 0, hold: int = 0) -> Ask:
    return Ask(uuid.uuid4().hex, quotas, tokens, hold)


async def admitted(counters: Counters, *quotas: Quota, tokens: int = 0, hold: int = 0) -> Ask | None:
    a = ask(*quotas, tokens=tokens, hold=hold)
    verdict = await counters.admit(a)
    return a if verdict.admitted else None


async def test_rpm_is_exact_at_the_window_edge(make: Make, clock: Clock) -> None:
    counters, quota = make(), Quota("key:k", rpm=2)
    assert await admitted(counters, quota)
    clock.now = T0 + 0.5
    assert await admitted(counters, quota)
    clock.now = T0 + WINDOW - 0.001
    verdict = await counters.admit(ask(quota))
    assert not verdict.admitted and verdict.refusal is not None
    assert verdict.refusal.kind == "rpm" and verdict.refusal.retry_after == pytest.approx(0.001, abs=0.001)
    clock.now = T0 + WINDOW  # the first request leaves the window now, not a moment later
    assert await admitted(counters, quota)
    clock.now = T0 + WINDOW + 0.499
    assert not await admitted(counters, quota)
    clock.now = T0 + WINDOW + 0.5
    assert await admitted(counters, quota)


async def test_no_double_burst_across_a_minute_boundary(make: Make, clock: Clock) -> None:
    """A fixed or two-bucket window would let ten more through just after the minute turns."""
    counters, quota = make(), Quota("key:k", rpm=10)
    clock.now = T0 + 59.9
    assert all([await admitted(counters, quota) for _ in range(10)])
    for offset in (60.1, 90.0, 119.89):
        clock.now = T0 + offset
        assert not await admitted(counters, quota)
    clock.now = T0 + 119.9
    assert all([await admitted(counters, quota) for _ in range(10)])
    assert not await admitted(counters, quota)


async def test_tpm_counts_the_estimate_then_the_real_tokens(make: Make, clock: Clock) -> None:
    counters, quota = make(), Quota("key:k", tpm=1000)
    first = await admitted(counters, quota, tokens=600)
    assert first
    clock.now = T0 + 10
    verdict = await counters.admit(ask(quota, tokens=600))
    assert verdict.refusal is not None and verdict.refusal.kind == "tpm"
    assert verdict.refusal.retry_after == pytest.approx(50)  # when the first 600 leave
    counters.settle(first, tokens=300, cost=None)  # it used fewer than estimated
    await counters.drain()
    assert (await counters.standing(quota)).tokens == 300
    assert await admitted(counters, quota, tokens=600)
    never = await counters.admit(ask(quota, tokens=1001))
    assert never.refusal is not None and never.refusal.retry_after is None


async def test_parallel_slots_are_released_on_settle(make: Make) -> None:
    counters, quota = make(), Quota("team:t", max_parallel=2)
    a, b = await admitted(counters, quota), await admitted(counters, quota)
    assert a and b
    verdict = await counters.admit(ask(quota))
    assert verdict.refusal is not None and verdict.refusal.kind == "parallel"
    counters.settle(a, tokens=None, cost=None)
    await counters.drain()
    c = await admitted(counters, quota)
    assert c
    for each in (b, c):
        counters.settle(each, tokens=None, cost=None)
    await counters.drain()
    assert (await counters.standing(quota)).parallel == 0


async def test_holds_become_spend_once(make: Make) -> None:
    counters, quota = make(), Quota("key:k", budget=100)
    a, b = await admitted(counters, quota, hold=40), await admitted(counters, quota, hold=40)
    assert a and b
    verdict = await counters.admit(ask(quota, hold=40))
    assert verdict.refusal is not None and verdict.refusal.kind == "budget"
    assert (verdict.standings[0].spent, verdict.standings[0].held) == (0, 80)
    counters.settle(a, tokens=None, cost=10)
    counters.settle(a, tokens=None, cost=10)  # a retried settlement applies once
    await counters.drain()
    standing = await counters.standing(quota)
    assert (standing.spent, standing.held) == (10, 40)
    assert await admitted(counters, quota, hold=40)  # 10 + 40 + 40 fits in 100
    counters.settle(b, tokens=None, cost=None)  # failed upstream: released, nothing spent
    await counters.drain()
    assert (await counters.standing(quota)).spent == 10


async def test_a_spent_budget_refuses_even_a_free_request(make: Make) -> None:
    counters, quota = make(), Quota("key:k", budget=50)
    a = await admitted(counters, quota, hold=50)
    assert a
    counters.settle(a, tokens=None, cost=50)
    await counters.drain()
    assert not await admitted(counters, quota, hold=0)


async def test_admission_is_all_or_nothing(make: Make) -> None:
    counters = make()
    key, team = Quota("key:k", rpm=5, budget=100), Quota("team:t", rpm=1)
    assert await admitted(counters, Quota("team:t", rpm=1))
    verdict = await counters.admit(ask(key, team, hold=30))
    assert verdict.refusal is not None and verdict.refusal.quota == team
    standing = await counters.standing(key)
    assert (standing.requests, standing.held) == (0, 0)  # nothing counted into the key


async def test_a_refund_takes_the_request_back(make: Make) -> None:
    counters, quota = make(), Quota("key:k", rpm=1, tpm=100)
    a = await admitted(counters, quota, tokens=50)
    assert a
    counters.settle(a, tokens=None, cost=None, refund=True)
    await counters.drain()
    standing = await counters.standing(quota)
    assert (standing.requests, standing.tokens) == (0, 0)
    assert await admitted(counters, quota, tokens=50)


async def test_each_period_has_its_own_spend(make: Make) -> None:
    counters = make()
    june, july = Quota("key:k", budget=100, period="m2025-06"), Quota("key:k", budget=100, period="m2025-07")
    a = await admitted(counters, june, hold=100)
    assert a
    counters.settle(a, tokens=None, cost=100)
    await counters.drain()
    assert not await admitted(counters, june, hold=1)
    assert await admitted(counters, july, hold=100)


async def test_concurrent_admissions_cannot_overrun_a_budget(make: Make) -> None:
    """Fifty at once, over two instances where the store is shared: exactly five fit."""
    instances = [make(), make()]
    quota = Quota("team:t", budget=500)
    asks = [ask(quota, hold=100) for _ in range(50)]
    verdicts = await asyncio.gather(*(instances[i % 2].admit(a) for i, a in enumerate(asks)))
    assert sum(v.admitted for v in verdicts) == 5


async def test_settled_counters_return_to_zero(make: Make, clock: Clock) -> None:
    counters = make()
    quota = Quota("key:k", rpm=100, tpm=10_000, max_parallel=10, budget=10_000)
    asks = [a for _ in range(5) if (a := await admitted(counters, quota, tokens=10, hold=100))]
    for a in asks:
        counters.settle(a, tokens=20, cost=None)
    await counters.drain()
    standing = await counters.standing(quota)
    assert (standing.parallel, standing.held, standing.spent, standing.tokens) == (0, 0, 0, 100)
    clock.now = T0 + WINDOW
    standing = await counters.standing(quota)
    assert (standing.requests, standing.tokens) == (0, 0)


async def test_in_process_counters_keep_nothing_of_a_settled_admission(clock: Clock) -> None:
    """Issue #14: every settled id was kept for ten minutes, megabytes at a steady load.
    Settlement stays idempotent (`test_holds_become_spend_once`) with nothing kept after it."""
    counters, quota = LocalCounters(clock), Quota("key:k", max_parallel=10, budget=10**15)

    async def serve(count: int) -> None:
        for _ in range(count):
            clock.now += 0.01  # 100 a second: all of them within ten minutes
            a = await admitted(counters, quota, hold=100)
            assert a is not None
            counters.settle(a, tokens=None, cost=10)

    tracemalloc.start()
    try:
        await serve(2_000)
        before = tracemalloc.get_traced_memory()[0]
        await serve(20_000)
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 64 * 1024, f"{grown} bytes kept by 20,000 settled admissions"
    assert (await counters.standing(quota)).spent == 22_000 * 10


@pytest.mark.redis
async def test_a_dead_instances_leases_expire(redis_url: str, clock: Clock) -> None:
    prefix = f"test-{uuid.uuid4().hex[:8]}:"
    alive = RedisCounters(redis_url, prefix, lease_ttl=30, clock=clock)
    dead = RedisCounters(redis_url, prefix, lease_ttl=30, clock=clock)
    quota = Quota("key:k", max_parallel=1, budget=100)
    try:
        assert await admitted(dead, quota, hold=100)  # then it dies: no renewal, no settle
        assert await admitted(alive, Quota("key:other", max_parallel=1))
        clock.now = T0 + 29
        assert not await admitted(alive, quota, hold=1)
        clock.now = T0 + 30
        assert await admitted(alive, quota, hold=100)
    finally:
        await alive.aclose()
        await dead.aclose()


@pytest.mark.redis
async def test_renewal_keeps_a_running_lease(redis_url: str, clock: Clock) -> None:
    prefix = f"test-{uuid.uuid4().hex[:8]}:"
    running = RedisCounters(redis_url, prefix, lease_ttl=30, clock=clock)
    other = RedisCounters(redis_url, prefix, lease_ttl=30, clock=clock)
    quota = Quota("key:k", max_parallel=1, budget=100)
    try:
        a = await admitted(running, quota, hold=100)
        assert a
        clock.now = T0 + 20
        await running.renew()
        clock.now = T0 + 45
        assert not await admitted(other, quota, hold=1)
        running.settle(a, tokens=None, cost=5)
        await running.drain()
        assert await admitted(other, quota, hold=95)
    finally:
        await running.aclose()
        await other.aclose()


@pytest.mark.redis
async def test_a_settlement_rides_with_the_next_admission(redis_url: str, clock: Clock) -> None:
    """Settled, then at once admitted again on the same instance: one round trip carries
    both, in order, so the freed slot and the spend are there for the admission."""
    prefix = f"test-{uuid.uuid4().hex[:8]}:"
    counters = RedisCounters(redis_url, prefix, lease_ttl=30, clock=clock)
    other = RedisCounters(redis_url, prefix, lease_ttl=30, clock=clock)
    quota = Quota("key:k", max_parallel=1, budget=100)
    try:
        a = await admitted(counters, quota, hold=60)
        assert a
        counters.settle(a, tokens=None, cost=30)
        sends = 0
        pipeline = counters._redis.pipeline

        def counted(*args: object, **kwargs: object) -> object:
            nonlocal sends
            sends += 1
            return pipeline(*args, **kwargs)  # type: ignore[arg-type]

        counters._redis.pipeline = counted  # type: ignore[method-assign]
        b = await admitted(counters, quota, hold=70)  # fits only once a's 60 became 30 spent
        assert b and sends == 1
        counters.settle(b, tokens=None, cost=None)
        await counters.drain()
        standing = await other.standing(quota)
        assert (standing.parallel, standing.held, standing.spent) == (0, 0, 30)
    finally:
        await counters.aclose()
        await other.aclose()


@pytest.mark.redis
async def test_riders_of_a_failed_admission_are_sent_again(redis_url: str, clock: Clock) -> None:
    """The admission's round trip fails (the connection broke): the settlement that rode
    with it is sent again by itself, and applies once."""
    prefix = f"test-{uuid.uuid4().hex[:8]}:"
    counters = RedisCounters(redis_url, prefix, lease_ttl=30, clock=clock)
    quota = Quota("key:k", max_parallel=1, budget=100)
    try:
        a = await admitted(counters, quota, hold=60)
        assert a
        counters.settle(a, tokens=None, cost=30)
        pipeline = counters._redis.pipeline

        def broken(*args: object, **kwargs: object) -> object:
            pipe = pipeline(*args, **kwargs)  # type: ignore[arg-type]

            async def execute(raise_on_error: bool = True) -> list[object]:
                raise RedisConnectionError("connection reset")

            pipe.execute = execute  # type: ignore[method-assign]
            counters._redis.pipeline = pipeline  # type: ignore[method-assign]  # only this once
            return pipe

        counters._redis.pipeline = broken  # type: ignore[method-assign]
        with pytest.raises(StoreUnavailable):
            await counters.admit(ask(quota, hold=10))
        await counters.drain()
        standing = await counters.standing(quota)
        assert (standing.parallel, standing.held, standing.spent) == (0, 0, 30)
    finally:
        await counters.aclose()


@pytest.mark.redis
async def test_admissions_of_one_loop_turn_share_a_round_trip(redis_url: str, clock: Clock) -> None:
    """Ten admissions begun together: one pipeline, each still its own all-or-nothing script."""
    prefix = f"test-{uuid.uuid4().hex[:8]}:"
    counters = RedisCounters(redis_url, prefix, lease_ttl=30, clock=clock)
    quota = Quota("team:t", budget=500)
    try:
        sends = 0
        pipeline = counters._redis.pipeline

        def counted(*args: object, **kwargs: object) -> object:
            nonlocal sends
            sends += 1
            return pipeline(*args, **kwargs)  # type: ignore[arg-type]

        counters._redis.pipeline = counted  # type: ignore[method-assign]
        verdicts = await asyncio.gather(*(counters.admit(ask(quota, hold=100)) for _ in range(10)))
        assert sends == 1
        assert sum(v.admitted for v in verdicts) == 5
        assert [v.standings[0].held for v in verdicts] == [100 * i for i in range(5)] + [500] * 5
    finally:
        await counters.aclose()


@pytest.mark.redis
async def test_a_failed_round_trip_fails_each_of_its_admissions(clock: Clock) -> None:
    counters = RedisCounters("redis://127.0.0.1:1", "test-down:", lease_ttl=30, clock=clock)
    try:
        results = await asyncio.gather(
            *(counters.admit(ask(Quota("key:k", rpm=5))) for _ in range(3)), return_exceptions=True
        )
        assert all(isinstance(r, StoreUnavailable) for r in results), results
    finally:
        await counters.aclose()


@pytest.mark.redis
async def test_scripts_redis_lost_are_loaded_again_in_order(redis_url: str, clock: Clock) -> None:
    """Redis restarted (its scripts gone) while a settlement waited to ride: the settlement
    is applied before the admission behind it runs again, so that one finds the slot free."""
    prefix = f"test-{uuid.uuid4().hex[:8]}:"
    counters = RedisCounters(redis_url, prefix, lease_ttl=30, clock=clock)
    quota = Quota("key:k", max_parallel=1, budget=100)
    try:
        a = await admitted(counters, quota, hold=60)
        assert a
        counters.settle(a, tokens=None, cost=30)
        counters._admit.sha = counters._settle.sha = "0" * 40  # what Redis no longer knows
        assert await admitted(counters, quota, hold=70)
        await counters.drain()
        standing = await counters.standing(quota)
        assert (standing.parallel, standing.held, standing.spent) == (1, 70, 30)
    finally:
        await counters.aclose()
