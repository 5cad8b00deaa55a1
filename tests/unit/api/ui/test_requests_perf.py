"""Performance: the UI's request log renders in under a second over a million spend rows
(SQLite, the migrated schema), and so does the overview's hour and day.

The rows go in with one `INSERT ... WITH RECURSIVE ... SELECT` after the gateway's migrations
(the indexes dropped first and made again from their own SQL after: a sort per index, not a
million random inserts each; a few seconds). They are a request a second for the last
million seconds (about 11.6 days, ending now), spread over 1,000 keys, 50 teams, 20 models
and three statuses. Then each page is fetched once through the whole app in-process (the
session check, the query, the template) and must answer within `BUDGET_S`: the log
unfiltered, by key, by model, by status, by key and time, its next page, one request; and
the overview by hour and by day, with the right counts.
Marked `perf`, as the store's own test (`tests/unit/store/test_request_log_perf.py`).
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx2 as httpx
import pytest

from llm_gateway.store.db import Database
from tests.unit.api.ui.signing import MASTER, sign_in, ui_gateway

pytestmark = pytest.mark.perf

ROWS = 1_000_000
BUDGET_S = 1.0
FILL = f"""
INSERT INTO spend_logs (
    at, row_id, request_id, key_id, team_id, end_user, model, deployment, provider,
    prompt_tokens, completion_tokens, cached_tokens, reasoning_tokens, cost_usd, estimated,
    latency_s, ttft_s, status, error, attempts, operation, stream, cache, attempt_log
)
WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < {ROWS - 1})
SELECT
    strftime('%Y-%m-%d %H:%M:%S', :now - ({ROWS - 1} - i), 'unixepoch') || '.000000',
    printf('%032x', i), 'req-' || i, 'key-' || (i % 1000), 'team-' || (i % 50), 'user-' || (i % 300),
    'model-' || (i % 20), 'model-' || (i % 20) || '/0:p/up', 'p',
    100 + i % 7, 20 + i % 5, 0, 0, CASE WHEN i % 10 = 0 THEN NULL ELSE '0.000123' END, 0,
    0.2 + (i % 13) / 100.0, CASE WHEN i % 2 = 0 THEN 0.05 ELSE NULL END,
    CASE WHEN i % 50 = 0 THEN 500 WHEN i % 97 = 0 THEN 429 ELSE 200 END,
    CASE WHEN i % 50 = 0 THEN 'UpstreamServerError' ELSE NULL END, 1, 'chat', i % 2, NULL,
    '[{{"deployment":"model-' || (i % 20) || '/0:p/up","provider":"p","outcome":"answered","latency_s":0.2}}]'
FROM n
"""


def fill(path: Path, now: int) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA cache_size = -262144")  # 256 MiB: the index sorts stay in memory
        conn.execute("PRAGMA synchronous = OFF")
        conn.execute("PRAGMA journal_mode = MEMORY")
        indexes = conn.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'spend_logs'"
            " AND sql IS NOT NULL"
        ).fetchall()
        assert len(indexes) >= 6, indexes  # at, row_id, request_id, key/team/model/status
        for name, _sql in indexes:
            conn.execute(f'DROP INDEX "{name}"')
        conn.execute(FILL, {"now": now})
        for _name, sql in indexes:
            conn.execute(sql)
        conn.commit()
        conn.execute("PRAGMA journal_mode = WAL")  # as the gateway runs it (store/db.py)
        assert conn.execute("SELECT count(*) FROM spend_logs").fetchone() == (ROWS,)


def listed(html: str) -> list[str]:
    return re.findall(r'<a href="/ui/requests/[^"]*">([^<]+)</a>', html)


@dataclass(frozen=True, slots=True)
class Seeded:
    url: str
    now: int
    """The newest row's time (epoch seconds): row `i` is `ROWS - 1 - i` seconds older."""


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Seeded:
    """A migrated SQLite file holding the million rows, made once for this module's tests."""
    path = tmp_path_factory.mktemp("million") / "gateway.db"
    url = f"sqlite:///{path}"

    async def migrate() -> None:
        database = Database(url)
        await database.migrate()
        await database.aclose()

    asyncio.run(migrate())
    now = int(datetime.now(UTC).timestamp())
    started = time.perf_counter()
    fill(path, now)
    print(f"seeded {ROWS:,} rows in {time.perf_counter() - started:.2f} s")
    return Seeded(url, now)


class Clock:
    """Fetches pages through a signed-in client, each timed once."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client
        self.timings: dict[str, float] = {}

    async def get(self, name: str, target: str) -> str:
        began = time.perf_counter()
        page = await self.client.get(target)
        self.timings[name] = time.perf_counter() - began
        assert page.status_code == 200, (name, page.text[:500])
        return page.text

    def check(self, what: str) -> None:
        print(f"{what} timings (s):", {name: round(seconds, 4) for name, seconds in self.timings.items()})
        assert all(seconds < BUDGET_S for seconds in self.timings.values()), self.timings


async def test_the_request_log_renders_fast_over_a_million_rows(seeded: Seeded) -> None:
    newest = ROWS - 1
    async with ui_gateway(database_url=seeded.url) as (client, _):
        await sign_in(client, MASTER)
        assert (await client.get("/ui/requests/req-1")).status_code == 200  # the app warmed up
        clock = Clock(client)
        first = await clock.get("log", "/ui/requests")
        assert listed(first) == [f"req-{newest - n}" for n in range(50)]
        found = re.search(r'<a href="([^"]+)" rel="next">', first)
        assert found is not None
        second = await clock.get("next page", found.group(1).replace("&amp;", "&"))
        assert listed(second) == [f"req-{newest - n}" for n in range(50, 100)]
        by_key = await clock.get("by key", "/ui/requests?key_id=key-7")
        assert listed(by_key)[:2] == [f"req-{newest - 992}", f"req-{newest - 1992}"]
        by_model = await clock.get("by model", "/ui/requests?model=model-3")
        assert len(listed(by_model)) == 50 and all(int(i[4:]) % 20 == 3 for i in listed(by_model))
        by_status = await clock.get("by status", "/ui/requests?status=500")
        assert len(listed(by_status)) == 50 and all(int(i[4:]) % 50 == 0 for i in listed(by_status))
        since = datetime.fromtimestamp(seeded.now - 86_400 * 5, UTC).strftime("%Y-%m-%dT%H:%M")
        by_time = await clock.get("by key and time", f"/ui/requests?key_id=key-7&from={since}")
        assert 1 <= len(listed(by_time)) <= 50
        one = await clock.get("one request", "/ui/requests/req-654321")
        assert "model-1/0:p/up" in one
        clock.check("request log")


async def test_the_overview_renders_fast_over_a_million_rows(seeded: Seeded) -> None:
    async with ui_gateway(database_url=seeded.url) as (client, _):
        await sign_in(client, MASTER)
        clock = Clock(client)
        hour = await clock.get("overview hour", "/ui/?range=hour")
        day = await clock.get("overview day", "/ui/?range=day")
        for page, seconds in ((hour, 3_600), (day, 86_400)):
            counted = re.search(r"([\d,]+) requests, last", page)
            assert counted is not None  # a request a second, over the window's whole slots
            assert seconds - 3_600 < int(counted.group(1).replace(",", "")) <= seconds + 1, counted.group(0)
        assert "newest 5,000 requests" in day
        clock.check("overview")
