"""Traffic over time for the UI's overview: requests, errors, tokens and cost per time bucket,
and latency percentiles over a bounded sample.

Buckets are one `GROUP BY` over the `at` index's range (the last hour or day): the database
sums, only one row per bucket comes back. Percentiles read at most `SAMPLE` of the newest
rows in the range (an index scan, newest first), so the page costs the same at a million
rows as at a thousand; the page says so. A week is read from the daily rollup instead
(`SpendStore.usage` by day).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from llm_gateway.store.db import Database
from llm_gateway.store.tables import spend_logs

SAMPLE = 5000
"""The most rows the latency percentiles read."""


@dataclass(frozen=True, slots=True)
class Bucket:
    start: datetime
    requests: int
    errors: int
    tokens: int
    cost_usd: Decimal | None


@dataclass(frozen=True, slots=True)
class Percentiles:
    sampled: int
    """How many requests the percentiles are over (at most `SAMPLE`, the newest)."""
    latency_p50: float | None
    latency_p95: float | None
    ttft_p50: float | None
    ttft_p95: float | None


def _epoch(database: Database) -> sa.ColumnElement[Any]:
    at = spend_logs.c.at
    if database.engine.dialect.name == "sqlite":
        return sa.cast(sa.func.strftime("%s", at), sa.BigInteger)
    return sa.cast(sa.func.extract("epoch", at), sa.BigInteger)


def _scope(since: datetime, key_id: str | None) -> list[sa.ColumnElement[bool]]:
    """The rows a chart reads: from `since`, of one key or of all."""
    found = [spend_logs.c.at >= since]
    return [*found, spend_logs.c.key_id == key_id] if key_id is not None else found


def percentile(sorted_values: list[float], share: float) -> float | None:
    """The nearest-rank percentile of already sorted values (None when there are none)."""
    if not sorted_values:
        return None
    rank = max(0, min(len(sorted_values) - 1, round(share * len(sorted_values) + 0.5) - 1))
    return sorted_values[rank]


class Traffic:
    def __init__(self, database: Database) -> None:
        self.database = database

    async def buckets(self, since: datetime, step_seconds: int, key_id: str | None = None) -> list[Bucket]:
        """Sums per `step_seconds` bucket from `since` (included), oldest first; empty buckets
        are left out (the chart fills them)."""
        table = spend_logs
        slot = (_epoch(self.database) // step_seconds).label("slot")
        query = sa.select(
            slot,
            sa.func.count(),
            sa.func.sum(sa.case((table.c.status >= 400, 1), else_=0)),
            sa.func.sum(table.c.prompt_tokens + table.c.completion_tokens),
            sa.func.sum(sa.cast(table.c.cost_usd, sa.Numeric(24, 9))),
        )
        query = query.where(*_scope(since, key_id)).group_by(slot).order_by(slot)
        async with self.database.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [
            Bucket(
                start=datetime.fromtimestamp(int(row[0]) * step_seconds, UTC),
                requests=int(row[1]),
                errors=int(row[2] or 0),
                tokens=int(row[3] or 0),
                cost_usd=Decimal(str(row[4])) if row[4] is not None else None,
            )
            for row in rows
        ]

    async def percentiles(self, since: datetime, key_id: str | None = None) -> Percentiles:
        """p50 and p95 of latency and time to first token over the newest `SAMPLE` requests."""
        table = spend_logs
        query = sa.select(table.c.latency_s, table.c.ttft_s)
        query = query.where(*_scope(since, key_id)).order_by(table.c.at.desc()).limit(SAMPLE)
        async with self.database.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        latencies = sorted(float(row[0]) for row in rows)
        ttfts = sorted(float(row[1]) for row in rows if row[1] is not None)
        return Percentiles(
            sampled=len(rows),
            latency_p50=percentile(latencies, 0.50),
            latency_p95=percentile(latencies, 0.95),
            ttft_p50=percentile(ttfts, 0.50),
            ttft_p95=percentile(ttfts, 0.95),
        )
