"""What the router knows about each deployment: circuit, requests in flight, latency, capacity.

One `DeploymentHealth` per deployment, all in a `HealthBoard` built at start-up. Outcomes
are recorded here by the executor; strategies read `in_flight` and `latency` through the
board. A circuit that opens or closes is reported through `on_change`, which the shared
store (Redis) uses to tell other gateway instances; their changes come back through
`apply_remote`. Nothing here does I/O or reads the time except through the given clocks.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from llm_gateway.core.config import BreakerSettings
from llm_gateway.core.errors import ProviderError, UpstreamTimeout
from llm_gateway.routing.breaker import Breaker, Circuit
from llm_gateway.routing.capacity import Capacity, RateWindow
from llm_gateway.routing.deployments import Group, Target
from llm_gateway.routing.latency import LatencyWindow, PeakEwma
from llm_gateway.routing.retry import breaker_verdict

Clock = Callable[[], float]
ChangeListener = Callable[[str, Circuit, float | None], None]
"""(deployment key, new circuit state, open-until as wall-clock time or None)."""
ProbeClaim = Callable[[str, float], Awaitable[bool]]
"""Ask other instances for the half-open probe of a deployment, for so many seconds."""
RECENT_ERRORS = 5
"""Failures kept per deployment for the UI's deployments page: the newest only, so a
failing deployment costs a bounded deque append per failure and nothing per success."""


class DeploymentHealth:
    __slots__ = (
        "_board",
        "breaker",
        "capacity",
        "ewma",
        "in_flight",
        "last_error",
        "recent_errors",
        "target",
    )

    def __init__(self, target: Target, board: HealthBoard) -> None:
        self.target = target
        self._board = board
        self.breaker = Breaker(board.settings)
        self.ewma = PeakEwma()
        self.in_flight = 0
        self.last_error: ProviderError | None = None
        self.recent_errors: deque[tuple[float, str, int | None]] = deque(maxlen=RECENT_ERRORS)
        """(wall-clock time, error type, status) of the newest failures that counted."""
        self.capacity = Capacity(target.rpm, target.tpm) if (target.rpm or target.tpm) else None

    def admits(self, now: float) -> bool:
        if self.capacity is not None and not self.capacity.has_room(now):
            return False
        return self.breaker.admits(now)

    def begin(self, now: float) -> None:
        self.in_flight += 1
        if self.capacity is not None:
            self.capacity.started(now)

    def answered(self, now: float, elapsed: float) -> None:
        """A first token (or a whole answer): the deployment works, and this is its latency."""
        self.ewma.observe(elapsed, now)
        if self.breaker.success(now) is not None:
            self._board.changed(self, now)

    def failed(self, now: float, elapsed: float, error: BaseException) -> None:
        counts, trip_for = breaker_verdict(error, self._board.settings)
        if counts:
            status = error.status_code if isinstance(error, ProviderError) else None
            self.recent_errors.append((self._board.wall(), type(error).__name__, status))
            if isinstance(error, ProviderError):
                self.last_error = error
        if isinstance(error, UpstreamTimeout):
            self.ewma.observe(elapsed, now)
        if not counts:
            self.answered_neutrally(now)
        elif self.breaker.failure(now, trip_for) is not None:
            self._board.changed(self, now)

    def answered_neutrally(self, now: float) -> None:
        """The upstream answered but refused the request itself (a 400): it is up, not slow."""
        if self.breaker.state is not Circuit.CLOSED and self.breaker.success(now) is not None:
            self._board.changed(self, now)

    def abandoned(self, now: float, elapsed: float, answered: bool) -> None:
        """Cancelled (a lost hedge, a client gone): no verdict, but a lower bound on latency."""
        self.breaker.release_probe()
        value = self.ewma.value
        if not answered and (value is None or elapsed > value):
            self.ewma.observe(elapsed, now)

    def end(self, now: float, tokens: int = 0) -> None:
        self.in_flight -= 1
        if self.capacity is not None:
            self.capacity.spent(now, tokens)


class HealthBoard:
    """Every deployment's health, keyed by `Target.key`; also the strategies' `Load` view."""

    def __init__(
        self,
        settings: BreakerSettings | None = None,
        targets: Iterable[Target] = (),
        *,
        clock: Clock = time.monotonic,
        wall: Clock = time.time,
    ) -> None:
        self.settings = settings or BreakerSettings()
        self.clock = clock
        self.wall = wall
        self.on_change: ChangeListener | None = None
        self.claim_probe: ProbeClaim | None = None
        self._deployments: dict[str, DeploymentHealth] = {}
        self._windows: dict[tuple[str, bool], LatencyWindow] = {}
        for target in targets:
            self.of(target)

    def of(self, target: Target) -> DeploymentHealth:
        health = self._deployments.get(target.key)
        if health is None:
            health = self._deployments[target.key] = DeploymentHealth(target, self)
        return health

    def in_flight(self, target: Target) -> int:
        return self.of(target).in_flight

    def latency(self, target: Target) -> float | None:
        return self.of(target).ewma.estimate(self.clock())

    def window(self, group: Group, streaming: bool) -> LatencyWindow:
        """Recent time-to-first-token (streams) or time-to-answer samples of a group."""
        key = (group.name, streaming)
        window = self._windows.get(key)
        if window is None:
            window = self._windows[key] = LatencyWindow()
        return window

    def changed(self, health: DeploymentHealth, now: float) -> None:
        if self.on_change is None:
            return
        breaker = health.breaker
        if breaker.state is Circuit.OPEN:
            self.on_change(health.target.key, Circuit.OPEN, self.wall() + (breaker.until - now))
        else:
            self.on_change(health.target.key, Circuit.CLOSED, None)

    def apply_remote(self, key: str, until_wall: float | None) -> None:
        """Another instance opened (until a wall-clock time) or closed (None) a circuit."""
        health = self._deployments.get(key)
        if health is None:
            return
        now = self.clock()
        if until_wall is None:
            health.breaker.close()
        else:
            health.breaker.force_open(now, now + (until_wall - self.wall()))

    def reopen_soon(self, target: Target, seconds: float) -> None:
        """Another instance holds the probe: stay away from this deployment a little longer."""
        breaker = self.of(target).breaker
        now = self.clock()
        if breaker.state is Circuit.OPEN:
            breaker.until = max(breaker.until, now + seconds)

    def snapshot(self, groups: Iterable[Group]) -> list[dict[str, Any]]:
        """Each deployment's health for `GET /admin/deployments`."""
        now = self.clock()
        rows = []
        for group in groups:
            for target in group.targets:
                health = self.of(target)
                breaker = health.breaker
                good, bad = breaker.outcomes.counts(now)
                estimate = health.ewma.estimate(now)
                rows.append(
                    {
                        "model": group.name,
                        "deployment": target.key,
                        "provider": target.provider.name,
                        "upstream_model": target.model,
                        "circuit": breaker.circuit(now).value,
                        "open_for_s": round(max(breaker.until - now, 0.0), 3)
                        if breaker.state is Circuit.OPEN
                        else 0.0,
                        "in_flight": health.in_flight,
                        "ewma_latency_ms": None if estimate is None else round(estimate * 1000, 1),
                        "recent_requests": good + bad,
                        "recent_error_rate": round(bad / (good + bad), 4) if good + bad else 0.0,
                        "rpm_used": _used(health.capacity.rpm, now) if health.capacity else None,
                        "tpm_used": _used(health.capacity.tpm, now) if health.capacity else None,
                        "rpm_limit": target.rpm,
                        "tpm_limit": target.tpm,
                        "recent_errors": [
                            {"at": at, "type": kind, "status": status}
                            for at, kind, status in reversed(health.recent_errors)
                        ],
                    }
                )
        return rows


def _used(window: RateWindow | None, now: float) -> int | None:
    return None if window is None else round(window.used(now))
