"""Prometheus metrics: what every request did, what every attempt did, and gauges of the
gateway's state read when scraped.

`Metrics.observe(record)` runs once per request (from the access middleware) and
`on_attempt(report)` once per upstream attempt (an attempt observer): each is a few
dict lookups of cached label children and counter increments. Gauges of state that lives
elsewhere (deployment health, the spend-log queue, the key index) are `Probe`s, read by
`refresh()`: at scrape time, and under `serve --workers N` every few seconds in each
worker, so any worker's answer covers all of them.

Under several workers prometheus-client's multiprocess mode is used (the CLI sets
`PROMETHEUS_MULTIPROC_DIR` before any worker starts): every value is a shared-memory file
per process, summed (or max-ed) across processes when scraped.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
)
from prometheus_client import generate_latest as _generate

from llm_gateway.core.observability_config import MetricsSettings
from llm_gateway.observability.record import RequestRecord
from llm_gateway.observability.spans import Attempt
from llm_gateway.observability.tally import REQUEST_LABELS, TOKEN_TYPES, Level, Tally

BUCKETS = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
    0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0,
)  # fmt: skip
"""Seconds: 0.1 ms (the gateway's own overhead) to 60 s (a long completion)."""

log = logging.getLogger("llm_gateway.metrics")
MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"
REJECTIONS = {"limit_exceeded": "rate_limit", "budget_exceeded": "budget", "permission_denied": "policy"}


@dataclass(frozen=True, slots=True)
class DeploymentState:
    model: str
    deployment: str
    provider: str
    circuit: int
    """0 closed, 1 half-open, 2 open."""
    in_flight: int


@dataclass(slots=True)
class Probes:
    """Where the scrape-time gauges read from; each None when that part is not running."""

    deployments: Callable[[], Iterable[DeploymentState]] | None = None
    spend_queue: Callable[[], tuple[int, int, int]] | None = None
    """(rows queued, flush failures so far, rows dropped so far)."""
    key_lookups: Callable[[], tuple[int, int]] | None = None
    """(hits, misses) of the virtual-key index so far."""


class _Family:
    """A labelled metric with its children cached by label values (`labels()` is slow)."""

    __slots__ = ("children", "metric")

    def __init__(self, metric: Any) -> None:
        self.metric = metric
        self.children: dict[tuple[str, ...], Any] = {}

    def __call__(self, *values: str) -> Any:
        child = self.children.get(values)
        if child is None:
            child = self.children[values] = self.metric.labels(*values) if values else self.metric
        return child


def multiprocess() -> bool:
    return bool(os.environ.get(MULTIPROCESS_ENV))


class Metrics:
    def __init__(self, settings: MetricsSettings | None = None, probes: Probes | None = None) -> None:
        self.settings = settings or MetricsSettings()
        self.probes = probes or Probes()
        self.multiprocess = multiprocess()
        disable_created_metrics()  # type: ignore[no-untyped-call]  # `_created` series double a scrape and no dashboard reads them
        self.registry = CollectorRegistry(auto_describe=True)
        own = None if self.multiprocess else self.registry
        per_key = ("key_id", "team") if self.settings.per_key_labels else ()
        self._per_key = bool(per_key)
        p = "llm_gateway_"

        def counter(name: str, doc: str, labels: Sequence[str] = ()) -> _Family:
            return _Family(Counter(p + name, doc, labels, registry=own))

        def histogram(name: str, doc: str, labels: Sequence[str]) -> _Family:
            return _Family(Histogram(p + name, doc, labels, registry=own, buckets=BUCKETS))

        def gauge(name: str, doc: str, labels: Sequence[str], mode: str) -> _Family:
            return _Family(Gauge(p + name, doc, labels, registry=own, multiprocess_mode=mode))  # type: ignore[arg-type]

        self.tally: Tally | None = None
        self.in_flight: Level | Gauge
        if self.multiprocess:
            self._prometheus_series(counter, histogram, per_key)
            self.in_flight = Gauge(
                p + "in_flight_requests", "Requests being served.", registry=own, multiprocess_mode="livesum"
            )
        else:
            self.tally = Tally(BUCKETS, self._per_key)
            self.registry.register(self.tally)
            self.in_flight = self.tally.in_flight
        self.draining = Gauge(
            p + "draining",
            "1 while this process drains for shutdown (summed over workers: those draining).",
            registry=own,
            multiprocess_mode="livesum",
        )
        self.draining_requests = Gauge(
            p + "draining_requests",
            "Requests a draining process is still finishing.",
            registry=own,
            multiprocess_mode="livesum",
        )
        self.retries = counter(
            "retries", "Attempts after a request's first that were not hedges.", ("model",)
        )
        self.fallbacks = counter("fallbacks", "Requests served by a fallback model.", ("model", "fallback"))
        self.hedges = counter("hedges", "Hedge attempts started.", ("model",))
        self.hedge_wins = counter("hedge_wins", "Hedge attempts that answered first.", ("model",))
        self.rejections = counter("rejections", "Requests refused by governance.", ("reason", "scope"))
        self.circuit = gauge(
            "deployment_circuit_state",
            "0 closed, 1 half-open, 2 open.",
            ("model", "deployment", "provider"),
            "livemax",
        )
        self.healthy = gauge(
            "deployment_healthy",
            "1 while the circuit is closed.",
            ("model", "deployment", "provider"),
            "livemin",
        )
        self.deployment_in_flight = gauge(
            "deployment_in_flight",
            "Attempts in flight per deployment.",
            ("model", "deployment", "provider"),
            "livesum",
        )
        self.spend_queue = gauge("spend_log_queue_depth", "Spend rows waiting to be written.", (), "livesum")
        self.spend_failures = counter("spend_log_flush_failures", "Spend-log writes that failed.")
        self.spend_dropped = counter("spend_log_dropped_rows", "Spend rows dropped (queue full).")
        self.key_lookups = counter("key_cache_lookups", "Virtual-key index lookups.", ("result",))
        self.cache_lookups = counter(
            "response_cache_lookups", "Response-cache lookups: hit, miss or bypass.", ("model", "result")
        )
        self.cache_saved = counter("response_cache_saved_usd", "What cache hits would have cost.", ("model",))
        self.cache_bytes = counter(
            "response_cache_bytes",
            "Response-cache entry bytes: read on hits, written when stored.",
            ("model", "direction"),
        )
        self.guardrail_results = counter(
            "guardrail_results", "Guardrail results per request.", ("guardrail", "result")
        )
        self._seen: dict[str, int] = {}

    def _prometheus_series(
        self, counter: Callable[..., _Family], histogram: Callable[..., _Family], per_key: Sequence[str]
    ) -> None:
        """Under several workers: the series a `Tally` keeps in one process, as
        prometheus-client's (their values in its shared files)."""
        self.requests = counter("requests", "Requests answered.", (*REQUEST_LABELS, *per_key))
        self.duration = histogram(
            "request_duration_seconds", "Arrival to last byte.", ("model", "front_door", "stream")
        )
        self.ttft = histogram(
            "time_to_first_token_seconds", "Streams: arrival to first chunk.", ("model", "provider")
        )
        self.upstream = histogram(
            "upstream_duration_seconds", "Time with an upstream attempt outstanding.", ("model", "provider")
        )
        self.overhead = histogram(
            "gateway_overhead_seconds", "Request duration minus upstream duration.", ("front_door",)
        )
        self.tokens = counter("tokens", "Tokens by type.", ("model", "provider", "type", *per_key))
        self.cost = counter(
            "cost_usd", "Cost of served requests in US dollars.", ("model", "provider", *per_key)
        )
        self.unpriced = counter("unpriced_requests", "Served requests with no price.", ("model", "provider"))
        self.attempts = counter(
            "upstream_attempts", "Upstream attempts by outcome.", ("deployment", "provider", "outcome")
        )

    def observe(self, record: RequestRecord) -> None:
        """Count one finished request. Never raises into the request."""
        if self.tally is not None:
            self.tally.observe(record)
        else:
            self._observe_shared(record)
        model = record.model or ""
        if record.fallback is not None:
            self.fallbacks(model, record.fallback).inc()
        if record.error_type is not None:
            reason = REJECTIONS.get(record.error_type)
            if reason is not None:
                self.rejections(reason, record.rejected_scope or "none").inc()
        if record.cache is not None:
            self.cache_lookups(model, record.cache).inc()
            if record.cache_saved_usd is not None:
                self.cache_saved(model).inc(float(record.cache_saved_usd))
            if record.cache_bytes:
                self.cache_bytes(model, "read" if record.cache == "hit" else "written").inc(
                    record.cache_bytes
                )
        for name, result in record.guardrails:
            self.guardrail_results(name, result).inc()

    def _observe_shared(self, record: RequestRecord) -> None:
        """`Tally.observe`, into prometheus-client's series (several workers)."""
        model = record.model or ""
        provider = record.provider or ""
        door = record.front_door or ""
        error = record.error_type or ""
        who = (record.key_id or "", record.team or "") if self._per_key else ()
        self.requests(model, record.deployment or "", provider, door, record.status_class, error, *who).inc()
        self.duration(model, door, "true" if record.stream else "false").observe(record.latency)
        if record.ttft is not None:
            self.ttft(model, provider).observe(record.ttft)
        if record.upstream is not None:
            self.upstream(model, provider).observe(record.upstream)
            if record.overhead is not None:
                self.overhead(door).observe(record.overhead)
        tokens = record.tokens
        if tokens.prompt or tokens.completion:
            for kind, value in zip(TOKEN_TYPES, tokens, strict=True):
                if value:
                    self.tokens(model, provider, kind, *who).inc(value)
        if record.cost_usd is not None:
            self.cost(model, provider, *who).inc(float(record.cost_usd))
        elif record.unpriced:
            self.unpriced(model, provider).inc()

    def on_attempt(self, report: Attempt) -> None:
        """The attempt observer: attempts by outcome, retries, hedges and hedge wins."""
        outcome = str(report.outcome)
        if self.tally is not None:
            self.tally.attempt(report.deployment, report.provider, outcome)
        else:
            self.attempts(report.deployment, report.provider, outcome).inc()
        if report.hedge:
            self.hedges(report.group).inc()
            if outcome == "answered":
                self.hedge_wins(report.group).inc()
        elif report.number > 1:
            self.retries(report.group).inc()

    def refresh(self) -> None:
        """Read the probes into the gauges (and counters kept elsewhere as plain ints)."""
        probes = self.probes
        if probes.deployments is not None:
            for state in probes.deployments():
                labels = (state.model, state.deployment, state.provider)
                self.circuit(*labels).set(state.circuit)
                self.healthy(*labels).set(1 if state.circuit == 0 else 0)
                self.deployment_in_flight(*labels).set(state.in_flight)
        if probes.spend_queue is not None:
            queued, failures, dropped = probes.spend_queue()
            self.spend_queue().set(queued)
            self._advance("spend_failures", failures, self.spend_failures())
            self._advance("spend_dropped", dropped, self.spend_dropped())
        if probes.key_lookups is not None:
            hits, misses = probes.key_lookups()
            self._advance("key_hits", hits, self.key_lookups("hit"))
            self._advance("key_misses", misses, self.key_lookups("miss"))

    async def refresh_forever(self, interval: float = 5.0) -> None:
        """Under several workers: keep this worker's gauges current for whichever one is scraped."""
        while True:
            await asyncio.sleep(interval)
            try:
                self.refresh()
            except Exception:
                log.exception("could not refresh the metrics gauges")

    def _advance(self, name: str, total: int, counter: Any) -> None:
        """Bring a counter up to a total counted elsewhere."""
        delta = total - self._seen.get(name, 0)
        if delta > 0:
            counter.inc(delta)
            self._seen[name] = total

    def render(self) -> tuple[bytes, str]:
        """The text exposition (every worker's values under multiprocess mode)."""
        self.refresh()
        if not self.multiprocess:
            return _generate(self.registry), CONTENT_TYPE_LATEST
        from prometheus_client import multiprocess as shared

        registry = CollectorRegistry()
        shared.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return _generate(registry), CONTENT_TYPE_LATEST
