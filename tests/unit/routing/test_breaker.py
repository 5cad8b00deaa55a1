"""The circuit breaker's schedule, driven by a clock that is just a number."""

from __future__ import annotations

from llm_gateway.core.config import BreakerSettings
from llm_gateway.routing.breaker import Breaker, Circuit, Outcomes

SETTINGS = BreakerSettings(failures=3, failure_rate=None, window=10, cooldown=30, long_retry_after=20)


def test_opens_after_n_failures_stays_open_probes_once_then_closes() -> None:
    breaker = Breaker(SETTINGS)
    assert breaker.failure(0.0) is None
    assert breaker.failure(1.0) is None
    assert breaker.admits(1.5)
    assert breaker.failure(2.0) is Circuit.OPEN
    # Open: nothing goes there for the whole cooldown.
    for now in (2.0, 10.0, 31.9):
        assert not breaker.admits(now)
        assert breaker.circuit(now) is Circuit.OPEN
    # Cooldown over: half-open, and exactly one request may probe.
    assert breaker.circuit(32.0) is Circuit.HALF_OPEN
    assert breaker.admits(32.0)
    assert breaker.claim_probe(32.0)
    assert not breaker.admits(32.1)
    assert not breaker.claim_probe(32.1)
    # The probe succeeds: closed, counting from zero.
    assert breaker.success(33.0) is Circuit.CLOSED
    assert breaker.circuit(33.0) is Circuit.CLOSED
    assert breaker.failure(34.0) is None
    assert breaker.failure(35.0) is None


def test_a_failed_probe_reopens_for_another_cooldown() -> None:
    breaker = Breaker(SETTINGS)
    for now in (0.0, 0.1, 0.2):
        breaker.failure(now)
    assert breaker.claim_probe(40.0)
    assert breaker.failure(41.0) is Circuit.OPEN
    assert not breaker.admits(70.9)
    assert breaker.admits(71.0)


def test_a_cancelled_probe_frees_the_slot() -> None:
    breaker = Breaker(SETTINGS)
    breaker.failure(0.0, trip_for=5.0)
    assert breaker.claim_probe(6.0)
    breaker.release_probe()
    assert breaker.claim_probe(6.5)


def test_a_lost_probe_is_given_up_after_a_cooldown() -> None:
    breaker = Breaker(SETTINGS)
    breaker.failure(0.0, trip_for=5.0)
    assert breaker.claim_probe(6.0)
    assert not breaker.admits(35.9)
    assert breaker.admits(36.0)


def test_failures_outside_the_window_do_not_count() -> None:
    breaker = Breaker(SETTINGS)
    breaker.failure(0.0)
    breaker.failure(1.0)
    assert breaker.failure(12.0) is None  # the first two have left the 10 s window
    assert breaker.state is Circuit.CLOSED


def test_failure_rate_opens_only_with_enough_requests() -> None:
    settings = BreakerSettings(failures=100, failure_rate=0.5, min_requests=10, window=60, cooldown=5)
    breaker = Breaker(settings)
    for i in range(4):
        breaker.success(float(i))
    for i in range(4):
        assert breaker.failure(10.0 + i) is None  # 4 of 8: under min_requests
    breaker.success(20.0)
    assert breaker.failure(21.0) is Circuit.OPEN  # 5 of 10


def test_trip_opens_at_once_for_the_given_time() -> None:
    breaker = Breaker(SETTINGS)
    assert breaker.failure(0.0, trip_for=120.0) is Circuit.OPEN
    assert not breaker.admits(119.0)
    assert breaker.admits(120.0)


def test_stragglers_do_not_decide_an_open_circuit() -> None:
    breaker = Breaker(SETTINGS)
    breaker.failure(0.0, trip_for=10.0)
    assert breaker.success(1.0) is None  # a request from before the circuit opened
    assert breaker.failure(2.0) is None
    assert breaker.state is Circuit.OPEN


def test_force_open_keeps_the_later_end() -> None:
    breaker = Breaker(SETTINGS)
    breaker.force_open(0.0, 100.0)
    breaker.force_open(1.0, 50.0)
    assert breaker.until == 100.0
    breaker.close()
    assert breaker.admits(2.0)


def test_outcomes_roll_over_buckets() -> None:
    outcomes = Outcomes(window=10.0)
    outcomes.add(0.5, True)
    outcomes.add(5.5, False)
    assert outcomes.counts(6.0) == (1, 1)
    assert outcomes.counts(10.9) == (0, 1)
    assert outcomes.counts(16.0) == (0, 0)
    outcomes.add(1000.0, False)
    assert outcomes.counts(1000.0) == (0, 1)
