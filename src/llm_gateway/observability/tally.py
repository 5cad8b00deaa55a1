"""The per-request and per-attempt series, counted in plain Python and read at scrape time.

Through prometheus-client every `labels(...).inc()` or `observe()` takes a lock (a
histogram's two) and every request made several: a visible share of the access path's
cost. In one process nothing reads these values until a scrape, so `Tally` keeps, per
tuple of label values seen, plain counters and bucket arrays (one dict look-up and a few
additions a request), and, registered as a custom collector, yields them as the same metric
families when the registry is collected: the same names, help, labels and buckets as the
prometheus-client series they replace. Under `serve --workers N` the values must live in
prometheus-client's shared files, so `Metrics` keeps its own series there and no `Tally`.
Reads and writes both happen on the event loop (a scrape renders on it), and a snapshot
of a dict's items is one step under the GIL, so nothing here locks.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator, Sequence

from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from llm_gateway.observability.record import RequestRecord

REQUEST_LABELS = ("model", "deployment", "provider", "front_door", "status_class", "error_type")
TOKEN_TYPES = ("prompt", "completion", "cached_read", "cache_write", "reasoning")
P = "llm_gateway_"


class _Histogram:
    """Bucket counts (not cumulative; the last one `+Inf`) and the sum."""

    __slots__ = ("counts", "sum")

    def __init__(self, size: int) -> None:
        self.counts = [0] * size
        self.sum = 0.0

    def add(self, other: _Histogram) -> None:
        self.counts = [a + b for a, b in zip(self.counts, other.counts, strict=True)]
        self.sum += other.sum


class _Row:
    """Everything counted for one tuple of a request's label values."""

    __slots__ = ("cost", "duration", "overhead", "requests", "tokens", "ttft", "unpriced", "upstream")

    def __init__(self, size: int) -> None:
        self.requests = 0
        self.duration = _Histogram(size)
        self.ttft: _Histogram | None = None
        self.upstream: _Histogram | None = None
        self.overhead: _Histogram | None = None
        self.tokens = [0, 0, 0, 0, 0]
        self.cost: float | None = None
        self.unpriced = 0


class Level:
    """A gauge moved up and down on the loop (`in_flight_requests`): a plain int."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0

    def inc(self) -> None:
        self.value += 1

    def dec(self) -> None:
        self.value -= 1


class Tally(Collector):
    def __init__(self, buckets: Sequence[float], per_key: bool) -> None:
        self.bounds = (*buckets, float("inf"))
        self.le = [floatToGoString(b) for b in self.bounds]  # type: ignore[no-untyped-call]
        self.per_key = per_key
        self.rows: dict[tuple[object, ...], _Row] = {}
        self.attempts: dict[tuple[str, str, str], int] = {}
        self.in_flight = Level()

    def observe(self, record: RequestRecord) -> None:
        """Count one request: its row by (model, deployment, provider, front door, status
        class, error type, stream[, key, team])."""
        key: tuple[object, ...] = (
            record.model or "",
            record.deployment or "",
            record.provider or "",
            record.front_door or "",
            record.status // 100,
            record.error_type or "",
            record.stream,
        )
        if self.per_key:
            key = (*key, record.key_id or "", record.team or "")
        row = self.rows.get(key)
        if row is None:
            row = self.rows[key] = _Row(len(self.bounds))
        bounds = self.bounds
        row.requests += 1
        latency = record.latency
        histogram = row.duration
        histogram.counts[bisect_left(bounds, latency)] += 1
        histogram.sum += latency
        if record.ttft is not None:
            histogram = row.ttft or self._new(row, "ttft")
            histogram.counts[bisect_left(bounds, record.ttft)] += 1
            histogram.sum += record.ttft
        upstream = record.upstream
        if upstream is not None:
            histogram = row.upstream or self._new(row, "upstream")
            histogram.counts[bisect_left(bounds, upstream)] += 1
            histogram.sum += upstream
            overhead = record.overhead
            if overhead is not None:
                histogram = row.overhead or self._new(row, "overhead")
                histogram.counts[bisect_left(bounds, overhead)] += 1
                histogram.sum += overhead
        tokens = record.tokens
        if tokens.prompt or tokens.completion:
            counts = row.tokens
            for index, value in enumerate(tokens):
                counts[index] += value
        if record.cost_usd is not None:
            row.cost = (row.cost or 0.0) + float(record.cost_usd)
        elif record.unpriced:
            row.unpriced += 1

    def _new(self, row: _Row, name: str) -> _Histogram:
        histogram = _Histogram(len(self.bounds))
        setattr(row, name, histogram)
        return histogram

    def attempt(self, deployment: str, provider: str, outcome: str) -> None:
        key = (deployment, provider, outcome)
        self.attempts[key] = self.attempts.get(key, 0) + 1

    def describe(self) -> Iterator[Metric]:
        """The families, without samples (for the registry's duplicate-name check)."""
        return self._families([], {})

    def collect(self) -> Iterator[Metric]:
        return self._families(list(self.rows.items()), dict(self.attempts))

    def _families(
        self, rows: list[tuple[tuple[object, ...], _Row]], attempts: dict[tuple[str, str, str], int]
    ) -> Iterator[Metric]:
        who = ("key_id", "team") if self.per_key else ()
        requests = CounterMetricFamily(P + "requests", "Requests answered.", labels=(*REQUEST_LABELS, *who))
        counts: dict[tuple[str, ...], float] = {}
        for key, row in rows:
            labels = (*(str(v) for v in key[:4]), f"{key[4]}xx", str(key[5]), *(str(v) for v in key[7:]))
            counts[labels] = counts.get(labels, 0) + row.requests
        for labels, count in counts.items():
            requests.add_metric(labels, count)
        yield requests
        yield self._histogram(
            "request_duration_seconds",
            "Arrival to last byte.",
            ("model", "front_door", "stream"),
            [((str(k[0]), str(k[3]), "true" if k[6] else "false"), r.duration) for k, r in rows],
        )
        yield self._histogram(
            "time_to_first_token_seconds",
            "Streams: arrival to first chunk.",
            ("model", "provider"),
            [((str(k[0]), str(k[2])), r.ttft) for k, r in rows],
        )
        yield self._histogram(
            "upstream_duration_seconds",
            "Time with an upstream attempt outstanding.",
            ("model", "provider"),
            [((str(k[0]), str(k[2])), r.upstream) for k, r in rows],
        )
        yield self._histogram(
            "gateway_overhead_seconds",
            "Request duration minus upstream duration.",
            ("front_door",),
            [((str(k[3]),), r.overhead) for k, r in rows],
        )
        yield from self._money(rows, who)
        in_flight = GaugeMetricFamily(P + "in_flight_requests", "Requests being served.")
        in_flight.add_metric((), self.in_flight.value)
        yield in_flight
        family = CounterMetricFamily(
            P + "upstream_attempts",
            "Upstream attempts by outcome.",
            labels=("deployment", "provider", "outcome"),
        )
        for labels, count in attempts.items():
            family.add_metric(labels, count)
        yield family

    def _money(self, rows: list[tuple[tuple[object, ...], _Row]], who: tuple[str, ...]) -> Iterator[Metric]:
        tokens = CounterMetricFamily(
            P + "tokens", "Tokens by type.", labels=("model", "provider", "type", *who)
        )
        cost = CounterMetricFamily(
            P + "cost_usd", "Cost of served requests in US dollars.", labels=("model", "provider", *who)
        )
        unpriced = CounterMetricFamily(
            P + "unpriced_requests", "Served requests with no price.", labels=("model", "provider")
        )
        by_type: dict[tuple[str, ...], int] = {}
        costs: dict[tuple[str, ...], float] = {}
        unpriced_counts: dict[tuple[str, str], int] = {}
        for key, row in rows:
            model, provider, owner = str(key[0]), str(key[2]), tuple(str(v) for v in key[7:])
            for kind, value in zip(TOKEN_TYPES, row.tokens, strict=True):
                if value:
                    labels = (model, provider, kind, *owner)
                    by_type[labels] = by_type.get(labels, 0) + value
            if row.cost is not None:
                labels = (model, provider, *owner)
                costs[labels] = costs.get(labels, 0.0) + row.cost
            if row.unpriced:
                unpriced_counts[model, provider] = unpriced_counts.get((model, provider), 0) + row.unpriced
        for labels, count in by_type.items():
            tokens.add_metric(labels, count)
        for labels, total in costs.items():
            cost.add_metric(labels, total)
        for pair, count in unpriced_counts.items():
            unpriced.add_metric(pair, count)
        yield from (tokens, cost, unpriced)

    def _histogram(
        self,
        name: str,
        doc: str,
        labels: tuple[str, ...],
        parts: list[tuple[tuple[str, ...], _Histogram | None]],
    ) -> HistogramMetricFamily:
        family = HistogramMetricFamily(P + name, doc, labels=labels)
        merged: dict[tuple[str, ...], _Histogram] = {}
        for values, part in parts:
            if part is None:
                continue
            into = merged.get(values)
            if into is None:
                into = merged[values] = _Histogram(len(self.bounds))
            into.add(part)
        for values, histogram in merged.items():
            cumulative, running = [], 0
            for le, count in zip(self.le, histogram.counts, strict=True):
                running += count
                cumulative.append((le, float(running)))
            family.add_metric(values, cumulative, histogram.sum)
        return family
