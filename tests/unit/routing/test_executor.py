"""The attempt loop over scripted deployments, with a fake clock and a sleep that only counts.

Each deployment's upstream model id names a script: what its successive calls do (raise
an error, take some seconds of the fake clock, or hang for real until cancelled).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import pytest

from llm_gateway.core.config import BreakerSettings
from llm_gateway.core.errors import (
    AllDeploymentsFailed,
    ContextLengthExceeded,
    ProviderError,
    UpstreamConnectionError,
    UpstreamOverloaded,
    UpstreamRateLimited,
    UpstreamStatusError,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from llm_gateway.routing.breaker import Circuit
from llm_gateway.routing.deployments import ModelCatalog, Target
from llm_gateway.routing.executor import Executor
from llm_gateway.routing.health import HealthBoard
from llm_gateway.routing.observers import AttemptObserver, AttemptReport, Outcome
from tests.stubs import QUICK_BREAKER, catalog, deployments


class Raised:
    value: AllDeploymentsFailed


@contextmanager
def raises_cause(cls: type[Exception]) -> Iterator[Raised]:
    """A failed request raises one `AllDeploymentsFailed`, whose deciding cause is a `cls`."""
    raised = Raised()
    with pytest.raises(AllDeploymentsFailed) as caught:
        yield raised
    raised.value = caught.value
    assert isinstance(caught.value.cause, cls), repr(caught.value.cause)


HANG = "hang"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[tuple[float, float]] = []  # (started at, seconds)

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append((self.now, seconds))
        self.now += seconds


class Upstream:
    """Scripted deployments: `script[model]` is consumed one outcome per call (the last repeats)."""

    def __init__(self, clock: Clock, script: dict[str, list[Any]]) -> None:
        self.clock = clock
        self.script = script
        self.calls: list[str] = []
        self.started_at: list[float] = []
        self.cancelled: list[str] = []

    def _next(self, model: str) -> Any:
        self.calls.append(model)
        self.started_at.append(self.clock.now)
        outcomes = self.script.get(model, [0.0])
        return outcomes.pop(0) if len(outcomes) > 1 else outcomes[0]

    async def call(self, target: Target) -> dict[str, Any]:
        outcome = self._next(target.model)
        if outcome == HANG:
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:
                self.cancelled.append(target.model)
                raise
        if isinstance(outcome, BaseException):
            raise outcome
        if isinstance(outcome, float):
            self.clock.now += outcome
        return {"model": target.model, "usage": {"total_tokens": 5}}

    def stream(self, target: Target) -> AsyncIterator[str]:
        return self._stream(target.model, self._next(target.model))

    async def _stream(self, model: str, outcome: Any) -> AsyncIterator[str]:
        if outcome == HANG:
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:
                self.cancelled.append(model)
                raise
        if isinstance(outcome, BaseException):
            raise outcome
        if isinstance(outcome, list):  # chunks, then maybe an error or a stall
            for item in outcome:
                if isinstance(item, BaseException):
                    raise item
                if item == HANG:
                    await asyncio.sleep(30)
                yield item
            return
        yield f"{model}:1"
        yield f"{model}:2"


def setup(
    models: dict[str, dict[str, Any]],
    script: dict[str, list[Any]],
    breaker: BreakerSettings = QUICK_BREAKER,
    observers: Sequence[AttemptObserver] = (),
    **routing: Any,
) -> tuple[Executor, ModelCatalog, Upstream, Clock]:
    clock = Clock()
    cat = catalog(models, **routing)
    health = HealthBoard(breaker, clock=clock)
    executor = Executor(
        random.Random(0), catalog=cat, health=health, clock=clock, sleep=clock.sleep, observers=observers
    )
    return executor, cat, Upstream(clock, script), clock


def error500() -> UpstreamUnavailable:
    return UpstreamUnavailable("HTTP 500")


async def test_a_retry_moves_to_another_deployment_without_waiting() -> None:
    models = {"m": deployments("bad", "good", routing={"strategy": "cost"})}
    models["m"]["deployments"][0]["pricing"] = {"input_per_mtok": 1.0}
    executor, cat, upstream, clock = setup(models, {"bad": [error500()]})
    served = await executor.call(cat.group("m"), upstream.call)
    assert upstream.calls == ["bad", "good"]
    assert served.target.model == "good"
    assert served.attempts == 2
    assert clock.sleeps == []


async def test_a_400_is_never_retried() -> None:
    executor, cat, upstream, _ = setup(
        {"m": deployments("bad", "good")}, {"bad": [UpstreamStatusError("no", status=400)]}, strategy="cost"
    )
    # Both unpriced: cost falls back to weights; force the bad one first with a seeded pick.
    for _ in range(20):
        upstream.calls.clear()
        try:
            await executor.call(cat.group("m"), upstream.call)
        except AllDeploymentsFailed as error:
            assert error.status_code == 400 and isinstance(error.cause, UpstreamStatusError)
            assert upstream.calls == ["bad"]
            return
    pytest.fail("the 400 deployment was never picked")


async def test_the_same_deployment_is_retried_after_backoff_and_retry_after() -> None:
    limited = [UpstreamRateLimited("slow down", retry_after=0.3)] * 2 + [0.01]
    executor, cat, upstream, clock = setup(
        {"m": deployments("only")}, {"only": limited}, breaker=BreakerSettings(failures=5)
    )
    served = await executor.call(cat.group("m"), upstream.call)
    assert served.attempts == 3
    assert upstream.calls == ["only"] * 3
    assert len(clock.sleeps) == 2
    assert all(0.3 <= seconds <= 5.0 for _, seconds in clock.sleeps)


async def test_max_attempts_is_a_hard_limit() -> None:
    models = {"m": deployments("a", "b", "c", routing={"max_attempts": 2})}
    executor, cat, upstream, _ = setup(models, {name: [error500()] for name in "abc"})
    with raises_cause(UpstreamUnavailable) as caught:
        await executor.call(cat.group("m"), upstream.call)
    assert len(upstream.calls) == 2
    assert len(set(upstream.calls)) == 2  # two different deployments
    assert caught.value.attempts == 2


@pytest.mark.parametrize("seed", range(20))
async def test_no_attempt_or_wait_runs_past_the_deadline(seed: int) -> None:
    rng = random.Random(seed)
    duration = rng.uniform(0.05, 0.6)
    script = {"only": [UpstreamUnavailable("boom", retry_after=rng.choice([None, 0.2, 0.5]))]}
    executor, cat, upstream, clock = setup(
        {"m": deployments("only")}, script, deadline=2.0, max_attempts=20, backoff_base=0.2, backoff_max=1.0
    )
    start = clock.now

    async def slow_failure(target: Target) -> dict[str, Any]:
        clock.now += duration
        return await upstream.call(target)

    with raises_cause(UpstreamUnavailable):
        await executor.call(cat.group("m"), slow_failure)
    assert all(at < start + 2.0 for at in upstream.started_at)
    assert all(at + seconds < start + 2.0 for at, seconds in clock.sleeps)


async def test_fallbacks_are_tried_in_order_after_the_group_is_exhausted() -> None:
    models = {
        "primary": deployments("p1", "p2", fallbacks=["second", "third"]),
        "second": deployments("s1"),
        "third": deployments("t1"),
    }
    script = {"p1": [error500()], "p2": [error500()], "s1": [UpstreamConnectionError("reset")]}
    executor, cat, upstream, _ = setup(models, script, max_attempts=2)
    served = await executor.call(cat.group("primary"), upstream.call)
    assert sorted(upstream.calls[:2]) == ["p1", "p2"]
    assert upstream.calls[2:] == ["s1", "s1", "t1"]  # `second` has one deployment: retried once
    assert served.fallback == "third"
    assert served.attempts == 5


async def test_context_window_fallback_goes_straight_to_the_bigger_model() -> None:
    models = {
        "small": deployments("s1", "s2", context_window_fallbacks=["big"], fallbacks=["other"]),
        "big": deployments("b1"),
        "other": deployments("o1"),
    }
    script = {name: [ContextLengthExceeded("too long")] for name in ("s1", "s2")}
    executor, cat, upstream, _ = setup(models, script)
    served = await executor.call(cat.group("small"), upstream.call)
    assert len(upstream.calls) == 2 and upstream.calls[1] == "b1"
    assert served.fallback == "big"


async def test_a_clients_fallbacks_replace_the_configured_ones() -> None:
    models = {
        "m": deployments("bad", fallbacks=["configured"]),
        "configured": deployments("c"),
        "mine": deployments("x"),
    }
    executor, cat, upstream, _ = setup(models, {"bad": [error500()]}, max_attempts=1)
    served = await executor.call(cat.group("m"), upstream.call, fallbacks=["mine"])
    assert upstream.calls == ["bad", "x"]
    assert served.fallback == "mine"


async def test_retries_off_means_one_attempt_and_no_fallback() -> None:
    models = {"m": deployments("bad", "good", fallbacks=["other"]), "other": deployments("o")}
    executor, cat, upstream, _ = setup(models, {"bad": [error500()], "good": [error500()]})
    with raises_cause(UpstreamUnavailable) as caught:
        await executor.call(cat.group("m"), upstream.call, retries=False)
    assert len(upstream.calls) == 1
    assert caught.value.attempts == 1


async def test_an_open_circuit_is_skipped_until_its_probe_closes_it() -> None:
    models = {"m": deployments("flaky", fallbacks=["spare"]), "spare": deployments("s")}
    script = {"flaky": [error500(), error500(), 0.01]}
    executor, cat, upstream, clock = setup(models, script, max_attempts=2, backoff_base=0.01)
    served = await executor.call(cat.group("m"), upstream.call)  # two failures open the circuit
    assert upstream.calls == ["flaky", "flaky", "s"]
    assert served.fallback == "spare"
    health = executor.health.of(cat.group("m").targets[0])
    assert health.breaker.circuit(clock.now) is Circuit.OPEN

    upstream.calls.clear()
    clock.now += 29.0
    served = await executor.call(cat.group("m"), upstream.call)
    assert upstream.calls == ["s"]  # still open: not even tried

    upstream.calls.clear()
    clock.now += 2.0
    served = await executor.call(cat.group("m"), upstream.call)  # cooldown over: the probe
    assert upstream.calls == ["flaky"]
    assert served.fallback is None
    assert health.breaker.circuit(clock.now) is Circuit.CLOSED


async def test_all_open_circuits_repeat_the_failure_that_opened_them() -> None:
    executor, cat, upstream, _ = setup(
        {"m": deployments("key")}, {"key": [UpstreamStatusError("bad key", status=401)]}
    )
    with raises_cause(UpstreamStatusError):
        await executor.call(cat.group("m"), upstream.call)
    with raises_cause(UpstreamStatusError) as caught:
        await executor.call(cat.group("m"), upstream.call)
    assert caught.value.status_code == 401
    assert caught.value.message.startswith("bad key (every deployment of model 'm' is cooling down")
    assert caught.value.headers["retry-after"] == "30"
    assert upstream.calls == ["key"]


async def test_open_circuits_without_a_recorded_cause_are_a_503() -> None:
    executor, cat, upstream, clock = setup({"m": deployments("a")}, {})
    executor.health.of(cat.group("m").targets[0]).breaker.force_open(clock.now, clock.now + 12)
    with raises_cause(UpstreamOverloaded) as caught:
        await executor.call(cat.group("m"), upstream.call)
    assert caught.value.status_code == 503
    assert caught.value.code == "no_healthy_deployment"
    assert caught.value.headers["retry-after"] == "12"
    assert upstream.calls == []


async def test_the_shared_probe_claim_is_respected() -> None:
    models = {"m": deployments("a")}
    executor, cat, upstream, clock = setup(models, {"a": [UpstreamStatusError("k", status=403), 0.0]})
    with raises_cause(UpstreamStatusError):
        await executor.call(cat.group("m"), upstream.call)
    clock.now += 31

    async def someone_else_probes(key: str, seconds: float) -> bool:
        return False

    executor.health.claim_probe = someone_else_probes
    with raises_cause(UpstreamStatusError) as caught:
        await executor.call(cat.group("m"), upstream.call)
    assert caught.value.status_code == 403
    assert upstream.calls == ["a"]


async def test_hedging_returns_the_fast_answer_and_cancels_the_slow_one() -> None:
    models = {"m": deployments("slow", "fast", routing={"hedge_after_ms": 20, "strategy": "cost"})}
    models["m"]["deployments"][0]["pricing"] = {"input_per_mtok": 1.0}
    executor, cat, upstream, _ = setup(models, {"slow": [HANG]})
    served = await executor.call(cat.group("m"), upstream.call)
    assert served.target.model == "fast"
    assert served.hedged
    assert served.attempts == 2
    assert upstream.cancelled == ["slow"]
    assert all(executor.health.of(t).in_flight == 0 for t in cat.group("m").targets)


async def test_a_fast_first_attempt_is_not_hedged() -> None:
    models = {"m": deployments("a", "b", routing={"hedge_after_ms": 500})}
    executor, cat, upstream, _ = setup(models, {})
    served = await executor.call(cat.group("m"), upstream.call)
    assert not served.hedged
    assert len(upstream.calls) == 1


async def test_hedge_after_a_percentile_waits_for_samples() -> None:
    models = {"m": deployments("a", "b", routing={"hedge_after": "p95"})}
    executor, cat, upstream, _ = setup(models, {})
    group = cat.group("m")
    assert group.hedge_quantile == 0.95
    assert executor._hedge_delay(group, streaming=False) is None
    for _ in range(25):
        await executor.call(group, upstream.call)
    assert executor._hedge_delay(group, streaming=False) is not None


async def test_a_stream_is_retried_only_before_its_first_chunk() -> None:
    models = {"m": deployments("cut", "good", routing={"strategy": "cost"})}
    models["m"]["deployments"][0]["pricing"] = {"input_per_mtok": 1.0}
    script = {"cut": [UpstreamConnectionError("reset"), ["c:1", UpstreamConnectionError("cut")]]}
    executor, cat, upstream, _ = setup(models, script)
    served = await executor.open_stream(cat.group("m"), upstream.stream)
    assert [c async for c in served.value] == ["good:1", "good:2"]
    assert upstream.calls == ["cut", "good"]

    upstream.calls.clear()
    executor.health.of(cat.group("m").targets[1]).breaker.force_open(0, 10**9)  # only `cut` left
    served = await executor.open_stream(cat.group("m"), upstream.stream)
    chunks = []
    with pytest.raises(UpstreamConnectionError):
        async for chunk in served.value:
            chunks.append(chunk)
    assert chunks == ["c:1"]
    assert upstream.calls == ["cut"]
    assert all(executor.health.of(t).in_flight == 0 for t in cat.group("m").targets)


async def test_a_stalled_stream_ends_with_a_timeout() -> None:
    models = {"m": deployments("stall", routing={"stream_idle_timeout": 0.05})}
    executor, cat, upstream, _ = setup(models, {"stall": [["first", HANG]]})
    served = await executor.open_stream(cat.group("m"), upstream.stream)
    received = []
    with pytest.raises(UpstreamTimeout, match="stalled"):
        async for chunk in served.value:
            received.append(chunk)
    assert received == ["first"]
    assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]


async def test_a_stream_without_a_first_chunk_before_the_deadline_is_a_timeout() -> None:
    models = {"m": deployments("never", routing={"deadline": 0.05})}
    executor, cat, upstream, _ = setup(models, {"never": [HANG]})
    with raises_cause(UpstreamTimeout):
        await executor.open_stream(cat.group("m"), upstream.stream)
    assert upstream.cancelled == ["never"]


async def test_a_call_is_cut_at_the_deadline() -> None:
    models = {"m": deployments("never", routing={"deadline": 0.05})}
    executor, cat, upstream, _ = setup(models, {"never": [HANG]})
    with raises_cause(UpstreamTimeout):
        await executor.call(cat.group("m"), upstream.call)
    assert upstream.cancelled == ["never"]


async def test_rpm_capacity_skips_a_full_deployment() -> None:
    models = {"m": deployments("small", "large")}
    models["m"]["deployments"][0]["rpm"] = 1
    executor, cat, upstream, _ = setup(models, {}, strategy="least-busy")
    for _ in range(6):
        await executor.call(cat.group("m"), upstream.call)
    assert upstream.calls.count("small") == 1


async def test_non_upstream_errors_pass_through_untouched() -> None:
    executor, cat, _, _ = setup({"m": deployments("a", "b")}, {})

    async def broken(target: Target) -> None:
        raise KeyError("bug")

    with pytest.raises(KeyError):
        await executor.call(cat.group("m"), broken)
    assert all(executor.health.of(t).in_flight == 0 for t in cat.group("m").targets)


def test_provider_errors_in_scripts_are_provider_errors() -> None:
    assert issubclass(UpstreamUnavailable, ProviderError)


async def test_a_request_that_made_no_attempt_says_zero_and_no_cause_is_mutated() -> None:
    """After a circuit opens, the stored cause is shared by every later request: the
    aggregate error carries each request's own attempt count, the cause is left alone."""
    models = {"m": deployments("a", "b")}
    script = {"a": [error500()] * 2, "b": [error500()] * 2}
    executor, cat, upstream, _ = setup(models, script, max_attempts=3, breaker=QUICK_BREAKER)
    with raises_cause(UpstreamUnavailable) as first:
        await executor.call(cat.group("m"), upstream.call)
    with raises_cause(UpstreamUnavailable) as second:
        await executor.call(cat.group("m"), upstream.call)
    assert first.value.attempts == 3
    assert all(executor.health.of(t).breaker.state is Circuit.OPEN for t in cat.group("m").targets)
    with raises_cause(UpstreamUnavailable) as cooled:
        await executor.call(cat.group("m"), upstream.call)
    assert cooled.value.attempts == 0
    assert len(upstream.calls) == 4
    for cause in (*first.value.causes, *second.value.causes, cooled.value.cause):
        assert "x-llm-gateway-attempts" not in cause.headers
        assert "cooling down" not in cause.message


async def test_fallbacks_are_tried_while_a_refused_keys_circuit_is_open() -> None:
    models = {"m": deployments("key", fallbacks=["spare"]), "spare": deployments("s")}
    executor, cat, upstream, _ = setup(models, {"key": [UpstreamStatusError("bad key", status=401)]})
    with raises_cause(UpstreamStatusError) as caught:
        await executor.call(cat.group("m"), upstream.call)  # a 401 is the answer: no fallback
    assert caught.value.status_code == 401 and upstream.calls == ["key"]
    served = await executor.call(cat.group("m"), upstream.call)  # its circuit is open now
    assert served.fallback == "spare"
    assert upstream.calls == ["key", "s"]


class Recorder:
    def __init__(self) -> None:
        self.reports: list[AttemptReport] = []

    def on_attempt(self, report: AttemptReport) -> None:
        self.reports.append(report)

    def seen(self) -> list[tuple[str, int, Outcome, bool]]:
        return [(r.model, r.number, r.outcome, r.hedge) for r in self.reports]


async def test_observers_see_every_attempt_of_a_call_with_its_outcome() -> None:
    recorder = Recorder()
    models = {"m": deployments("bad", fallbacks=["spare"]), "spare": deployments("s")}
    executor, cat, upstream, _ = setup(
        models, {"bad": [error500()], "s": [0.25]}, max_attempts=1, observers=[recorder]
    )
    served = await executor.call(cat.group("m"), upstream.call)
    assert served.fallback == "spare"
    assert recorder.seen() == [("bad", 1, Outcome.FAILED, False), ("s", 2, Outcome.ANSWERED, False)]
    failed, answered = recorder.reports
    assert isinstance(failed.error, UpstreamUnavailable) and failed.group == "m" and not failed.streaming
    assert answered.group == "spare" and answered.latency == pytest.approx(0.25) and answered.error is None


async def test_observers_see_a_stream_when_it_ends() -> None:
    recorder = Recorder()
    models = {"m": deployments("cut")}
    script = {"cut": [["c:1", UpstreamConnectionError("reset")]]}
    executor, cat, upstream, _ = setup(models, script, observers=[recorder])
    served = await executor.open_stream(cat.group("m"), upstream.stream)
    assert recorder.reports == []  # the stream is still running
    with pytest.raises(UpstreamConnectionError):
        async for _ in served.value:
            pass
    (report,) = recorder.reports
    assert report.outcome is Outcome.FAILED and report.streaming and report.first_chunk is not None


async def test_observers_see_an_abandoned_stream_and_a_hedge() -> None:
    recorder = Recorder()
    executor, cat, upstream, _ = setup({"m": deployments("a")}, {}, observers=[recorder])
    served = await executor.open_stream(cat.group("m"), upstream.stream)
    await served.value.aclose()  # type: ignore[attr-defined]
    assert recorder.seen() == [("a", 1, Outcome.ABANDONED, False)]

    recorder.reports.clear()
    models = {"m": deployments("slow", "fast", routing={"hedge_after_ms": 10, "strategy": "cost"})}
    models["m"]["deployments"][0]["pricing"] = {"input_per_mtok": 1.0}  # the cost strategy picks it first
    executor, cat, upstream, _ = setup(models, {"slow": [HANG]}, observers=[recorder])
    served_call = await executor.call(cat.group("m"), upstream.call)
    assert served_call.hedged
    assert sorted(recorder.seen()) == [
        ("fast", 2, Outcome.ANSWERED, True),
        ("slow", 1, Outcome.ABANDONED, False),
    ]


async def test_without_observers_no_report_is_built(monkeypatch: pytest.MonkeyPatch) -> None:
    executor, cat, upstream, _ = setup({"m": deployments("a")}, {})
    monkeypatch.setattr("llm_gateway.routing.executor.AttemptReport", None)  # would fail if called
    assert (await executor.call(cat.group("m"), upstream.call)).attempts == 1
