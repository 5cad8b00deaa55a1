"""Performance: the request log stays fast at a million rows (SQLite, the migrated schema).

One million spend rows go in through the sqlite3 module's `executemany`, in one transaction
(the test's own set-up, a few seconds); then a page filtered by key and time range (limit 50),
a page filtered by status, and the lookup by request id must each answer in under 100 ms,
measured through `RequestLog` (the admin API's own reads), best of a few after a warm-up.
Marked `perf`; it runs in the normal suite (it takes well under 15 s), and `-m "not perf"`
leaves it out.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from llm_gateway.store.db import Database
from llm_gateway.store.request_log import RequestLog

pytestmark = pytest.mark.perf

ROWS = 1_000_000
KEYS = 1_000
START = datetime(2025, 1, 1, tzinfo=UTC)
BUDGET_S = 0.100
COLUMNS = (
    "at",
    "request_id",
    "key_id",
    "team_id",
    "model",
    "deployment",
    "provider",
    "prompt_tokens",
    "completion_tokens",
    "cached_tokens",
    "reasoning_tokens",
    "cost_usd",
    "estimated",
    "latency_s",
    "ttft_s",
    "status",
    "attempts",
    "operation",
    "stream",
    "attempt_log",
)
ATTEMPTS = '[{"deployment":"m/0:p/up","provider":"p","outcome":"answered","latency_s":0.2}]'


def rows() -> Iterator[tuple[Any, ...]]:
    """Eleven days of traffic, a request a second, spread over keys, teams, models and
    statuses (built from precomputed parts: the set-up is Python's time, not the test's)."""
    keys = [f"key-{n}" for n in range(KEYS)]
    teams = [f"team-{n}" for n in range(50)]
    models = [(f"model-{n}", f"model-{n}/0:p/up", "p") for n in range(20)]
    tail = (100, 20, 0, 0, "0.0001", 0, 0.2, None)
    ok, failed = (200, 1, "chat", 0, ATTEMPTS), (500, 1, "chat", 0, ATTEMPTS)
    stamps = [f"{h:02d}:{m:02d}:{s:02d}.000000" for h in range(24) for m in range(60) for s in range(60)]
    day = 86_400
    for n in range(ROWS):
        days, second = divmod(n, day)
        at = f"2025-01-{days + 1:02d} {stamps[second]}"
        yield (
            (at, f"req-{n}", keys[n % KEYS], teams[n % 50], *models[n % 20], *tail)
            + (failed if n % 50 == 0 else ok)
        )


def fill(path: Path) -> None:
    """The rows, in one transaction; the migration's indexes are dropped first and made again
    from their own SQL after (a sort per index instead of a million random inserts each)."""
    marks = ", ".join("?" * len(COLUMNS))
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA cache_size = -262144")  # 256 MiB: the sorts stay in memory
        conn.execute("PRAGMA synchronous = OFF")
        conn.execute("PRAGMA journal_mode = MEMORY")
        indexes = conn.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'spend_logs'"
            " AND sql IS NOT NULL"
        ).fetchall()
        assert len(indexes) >= 6, indexes  # at, row_id, request_id, key/team/model/status
        for name, _sql in indexes:
            conn.execute(f'DROP INDEX "{name}"')
        conn.executemany(f"INSERT INTO spend_logs ({', '.join(COLUMNS)}) VALUES ({marks})", rows())
        for _name, sql in indexes:
            conn.execute(sql)
        conn.commit()
        conn.execute("PRAGMA journal_mode = WAL")  # as the gateway runs it (store/db.py)


async def best(query: Callable[[], Awaitable[Any]]) -> float:
    await query()  # warm-up: the pages this query touches are read once
    times = []
    for _ in range(5):
        started = time.perf_counter()
        await query()
        times.append(time.perf_counter() - started)
    return min(times)


async def test_a_million_rows_answer_a_page_and_a_lookup_fast(tmp_path: Path) -> None:
    path = tmp_path / "log.db"
    url = f"sqlite:///{path}"
    migrating = Database(url)
    await migrating.migrate()
    await migrating.aclose()
    fill(path)
    db = Database(url)
    try:
        log = RequestLog(db)
        start, end = START + timedelta(days=3), START + timedelta(days=8)

        async def by_key() -> None:
            page = await log.page(50, filters={"key_id": "key-7"}, start=start, end=end)
            assert len(page.items) == 50 and page.next_cursor
            assert all(item["key_id"] == "key-7" and start <= item["at"] < end for item in page.items)
            following = await log.page(
                50, page.next_cursor, filters={"key_id": "key-7"}, start=start, end=end
            )
            assert following.items[0]["at"] < page.items[-1]["at"]

        async def by_status() -> None:
            page = await log.page(50, filters={"status": 500})
            assert len(page.items) == 50 and all(item["status"] == 500 for item in page.items)

        async def by_id() -> None:
            found = await log.get("req-654321")
            assert found is not None and found["attempt_log"][0]["outcome"] == "answered"

        timings = {
            name: await best(query) for name, query in (("key", by_key), ("status", by_status), ("id", by_id))
        }
        # by_key reads two pages: each must fit the budget.
        timings["key"] /= 2
        print("request log timings (s):", timings)
        assert all(seconds < BUDGET_S for seconds in timings.values()), timings
    finally:
        await db.aclose()
