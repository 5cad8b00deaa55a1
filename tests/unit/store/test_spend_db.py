"""The database spend sink on SQLite and PostgreSQL: rows and their daily rollup written
together, unpriced requests counted (cost null, never 0), old rows deleted, pages bounded."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from llm_gateway.store.db import Database
from llm_gateway.store.spend import SpendLog, SpendRow
from llm_gateway.store.spend_db import BadCursor, DatabaseSink, SpendStore
from llm_gateway.store.tables import spend_logs, usage_daily
from tests.unit.store.test_spend import row

DAY = datetime(2025, 6, 18, 12, tzinfo=UTC)


def spend(n: int, **changes: object) -> SpendRow:
    return dataclasses.replace(row(n), **{"at": DAY, **changes})  # type: ignore[arg-type]


async def test_rows_and_rollups_are_written_together(database: Database) -> None:
    sink = DatabaseSink(database)
    await sink.write([spend(1), spend(2, cost_usd=Decimal("0.000000123"), prompt_tokens=10)])
    await sink.write([spend(3, end_user="u\x00" + "x" * 500, status=502, error="UpstreamError")])
    async with database.engine.connect() as conn:
        logged = (await conn.execute(sa.select(spend_logs).order_by(spend_logs.c.id))).all()
        daily = (await conn.execute(sa.select(usage_daily).order_by(usage_daily.c.end_user))).all()
    assert [r.request_id for r in logged] == ["r1", "r2", "r3"]
    assert logged[1].cost_usd == Decimal("0.000000123") and logged[0].at == DAY
    assert logged[2].end_user == "u" + "x" * 199
    assert len(daily) == 2
    first = daily[0]
    assert (first.day, first.key_id, first.team_id, first.model, first.end_user) == (
        "2025-06-18",
        "k",
        "",
        "m",
        "",
    )
    assert first.requests == 2 and first.prompt_tokens == 13 and first.completion_tokens == 4
    assert first.cost_nanos == 1_000_123 and first.unpriced_requests == 0 and first.errors == 0
    assert daily[1].errors == 1


async def totals(database: Database) -> tuple[list[str], list[tuple[int, int, int]]]:
    async with database.engine.connect() as conn:
        logged = (await conn.execute(sa.select(spend_logs.c.request_id).order_by(spend_logs.c.id))).all()
        daily = (
            await conn.execute(
                sa.select(usage_daily.c.requests, usage_daily.c.prompt_tokens, usage_daily.c.cost_nanos)
            )
        ).all()
    return [r.request_id for r in logged], [tuple(d) for d in daily]


async def test_a_batch_written_twice_is_stored_once(database: Database) -> None:
    """The same rows again (a retry after a commit whose acknowledgement was lost) add no
    row and no sum; a batch mixing stored and new rows adds only the new ones."""
    sink = DatabaseSink(database)
    batch = [spend(1), spend(2, cost_usd=Decimal("0.000000123"))]
    await sink.write(batch)
    once = await totals(database)
    await sink.write(batch)
    assert await totals(database) == once
    await sink.write([*batch, spend(3)])
    logged, daily = await totals(database)
    assert logged == ["r1", "r2", "r3"]
    assert daily == [(3, 9, 2_000_123)]


class LostAcknowledgement:
    """Commits the first write, then fails as if the connection dropped before the reply."""

    def __init__(self, sink: DatabaseSink) -> None:
        self.sink = sink
        self.calls = 0

    async def write(self, rows: list[SpendRow]) -> None:
        self.calls += 1
        await self.sink.write(rows)
        if self.calls == 1:
            raise ConnectionResetError("connection lost after COMMIT")


async def test_the_flusher_retrying_a_committed_batch_duplicates_nothing(database: Database) -> None:
    sink = LostAcknowledgement(DatabaseSink(database))
    log = SpendLog(sink)
    for n in (1, 2):
        log.put(spend(n))
    assert await log.flush() is False  # committed, but the flusher could not know
    assert log.pending == 2
    assert await log.flush() is True and sink.calls == 2
    logged, daily = await totals(database)
    assert logged == ["r1", "r2"] and daily == [(2, 6, 2_000_000)]


async def stored(database: Database) -> list[dict[str, object]]:
    async with database.engine.connect() as conn:
        found = (await conn.execute(sa.select(spend_logs).order_by(spend_logs.c.request_id))).all()
    return [{k: v for k, v in r._mapping.items() if k != "id"} for r in found]


async def test_a_new_batch_and_a_retried_one_store_the_same_values(database: Database) -> None:
    """A new batch goes through the statement compiled once, a batch sent again through the
    deduplicating insert: each column reads back the same either way (times, decimals,
    booleans, JSON text, nulls)."""
    sink = DatabaseSink(database)
    made = dict(cost_usd=Decimal("0.000000123"), estimated=True, stream=True, ttft_s=0.25, end_user="u")
    batch = [spend(1, **made), spend(2, cost_usd=None)]
    await sink.write(batch)
    first = await stored(database)
    async with database.engine.begin() as conn:
        await conn.execute(spend_logs.delete())
        await conn.execute(usage_daily.delete())
    await sink.write(batch)  # the same ids: through the deduplicating insert
    assert await stored(database) == first
    assert first[0]["cost_usd"] == Decimal("0.000000123") and first[0]["at"] == DAY
    assert first[0]["estimated"] is True and first[1]["cost_usd"] is None


async def test_a_batch_whose_write_failed_is_written_once_when_retried(database: Database) -> None:
    sink = DatabaseSink(database)
    failing = True

    def fail_the_rollup(conn: object, cursor: object, statement: str, *args: object) -> None:
        if failing and statement.startswith("INSERT INTO usage_daily"):
            raise ConnectionResetError("connection lost")

    sa.event.listen(database.engine.sync_engine, "before_cursor_execute", fail_the_rollup)
    batch = [spend(1), spend(2)]
    with pytest.raises(ConnectionResetError):
        await sink.write(batch)
    assert await totals(database) == ([], [])  # rolled back
    failing = False
    await sink.write(batch)
    await sink.write(batch)
    assert await totals(database) == (["r1", "r2"], [(2, 6, 2_000_000)])
    await sink.write([spend(3)])  # a new batch again
    assert await totals(database) == (["r1", "r2", "r3"], [(3, 9, 3_000_000)])


async def test_unpriced_requests_are_counted_and_cost_nothing(database: Database) -> None:
    sink = DatabaseSink(database)
    await sink.write([spend(1, cost_usd=None), spend(2, cost_usd=None, model="x")])
    await sink.write([spend(3, model="x")])
    store = SpendStore(database)
    by_model = {u.group: u for u in await store.usage("model")}
    assert by_model["m"].cost_usd is None and by_model["m"].unpriced_requests == 1
    assert by_model["x"].cost_usd == Decimal("0.001") and by_model["x"].unpriced_requests == 1
    async with database.engine.connect() as conn:
        costs = (
            (await conn.execute(sa.select(spend_logs.c.cost_usd).order_by(spend_logs.c.id))).scalars().all()
        )
    assert costs == [None, None, Decimal("0.001")]


async def test_usage_groups_and_filters(database: Database) -> None:
    sink = DatabaseSink(database)
    later = DAY + timedelta(days=1)
    await sink.write(
        [
            spend(1, key_id="a", team_id="t"),
            spend(2, key_id="b", team_id="t", end_user="alice"),
            spend(3, key_id="a", at=later),
        ]
    )
    store = SpendStore(database)
    keys = {u.group: u.requests for u in await store.usage("key")}
    assert keys == {"a": 2, "b": 1}
    assert {u.group: u.requests for u in await store.usage("team")} == {None: 1, "t": 2}
    assert {u.group: u.requests for u in await store.usage("user")} == {None: 2, "alice": 1}
    assert [(u.group, u.requests) for u in await store.usage("day")] == [("2025-06-18", 2), ("2025-06-19", 1)]
    only = await store.usage("key", start=date(2025, 6, 19), end=date(2025, 6, 19))
    assert [(u.group, u.requests) for u in only] == [("a", 1)]
    assert [u.group for u in await store.usage("key", team_id="t", key_id="b")] == ["b"]


async def test_retention_deletes_old_rows_through_the_flusher(database: Database) -> None:
    sink = DatabaseSink(database)
    now = datetime.now(UTC)
    await sink.write([spend(1, at=now - timedelta(days=91)), spend(2, at=now - timedelta(days=1))])
    log = SpendLog(sink, retention_days=90)
    assert await log.prune_if_due() == 1
    assert await log.prune_if_due() == 0  # at most once per prune_every
    async with database.engine.connect() as conn:
        left = (await conn.execute(sa.select(spend_logs.c.request_id))).scalars().all()
        days = await conn.scalar(sa.select(sa.func.count()).select_from(usage_daily))
    assert left == ["r2"] and days == 2


async def test_logs_are_paged_newest_first(database: Database) -> None:
    sink = DatabaseSink(database)
    await sink.write([spend(n, at=DAY + timedelta(seconds=n % 3)) for n in range(7)])
    store = SpendStore(database)
    seen: list[str] = []
    cursor = None
    while True:
        page = await store.logs(3, cursor)
        seen += [item["request_id"] for item in page.items]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert sorted(seen) == [f"r{n}" for n in range(7)] and len(seen) == 7
    assert seen[:3] == ["r5", "r2", "r4"]
    filtered = await store.logs(10, start=DAY + timedelta(seconds=2))
    assert {item["request_id"] for item in filtered.items} == {"r2", "r5"}
    with pytest.raises(BadCursor):
        await store.logs(3, "garbage!")


async def test_rows_from_before_row_ids_survive_the_migration(database_url: str) -> None:
    """A log written at revision 0002 is upgraded in place: old rows keep no row id (NULLs
    never conflict), new rows are written once, and the rollups add up."""
    db = Database(database_url)
    try:
        await db.migrate("0002_spend")
        old = dict.fromkeys(("prompt_tokens", "completion_tokens", "cached_tokens", "reasoning_tokens"), 0)
        values = {"at": DAY, "request_id": "old", "estimated": False, "latency_s": 0.1, "status": 200}
        values |= {"attempts": 1, "operation": "chat", "stream": False, **old}
        columns = sa.table("spend_logs", *(sa.column(name) for name in values))
        async with db.engine.begin() as conn:
            await conn.execute(sa.insert(columns), [values, {**values, "request_id": "old2"}])
        await db.migrate()
        sink = DatabaseSink(db)
        batch = [spend(1)]
        await sink.write(batch)
        await sink.write(batch)
        async with db.engine.connect() as conn:
            found = (await conn.execute(sa.select(spend_logs.c.request_id, spend_logs.c.row_id))).all()
        assert sorted((r.request_id, r.row_id) for r in found) == [
            ("old", None),
            ("old2", None),
            ("r1", batch[0].row_id),
        ]
    finally:
        await db.aclose()
