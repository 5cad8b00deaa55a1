"""The spend log in the gateway's database: `spend_logs` (one row per request) and
`usage_daily` (the rollup the usage reports read), written in one transaction per batch.

`DatabaseSink.write` inserts the batch's rows and upserts the daily sums of the rows it
inserted (`INSERT … ON CONFLICT DO UPDATE`, on SQLite and PostgreSQL alike), so a rollup
never counts a row the log lacks, nor the reverse. Rows are written exactly once: each has
a unique `row_id`, the insert skips ids already stored (`ON CONFLICT DO NOTHING … RETURNING`)
and only what it returns is rolled up, so a batch retried after a commit whose
acknowledgement was lost changes nothing. Text a client chose (the end user) is cut
to the column's size and stripped of what PostgreSQL refuses (NUL, lone surrogates): a
row that could never be stored would block every batch after it.

`prune` deletes log rows older than the retention; the daily rollup is kept (one row per
day and group, small, and what the reports read).
"""

from __future__ import annotations

import base64
import binascii
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from operator import itemgetter
from typing import Any, Literal

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect

from llm_gateway.store.counters import to_nanos, to_usd
from llm_gateway.store.db import Database
from llm_gateway.store.spend import SpendRow, encode_attempts
from llm_gateway.store.tables import spend_logs, usage_daily

GroupBy = Literal["key", "team", "model", "user", "day"]
_GROUP_COLUMNS = {"key": "key_id", "team": "team_id", "model": "model", "user": "end_user", "day": "day"}
_SUMS = (
    "requests",
    "prompt_tokens",
    "completion_tokens",
    "cached_tokens",
    "reasoning_tokens",
    "cost_nanos",
    "unpriced_requests",
    "errors",
)


def _text(value: str | None, size: int) -> str | None:
    if value is None:
        return None
    if value.isascii() and "\x00" not in value:
        return value[:size]  # nothing to clean, as nearly always
    clean = value.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")
    return clean[:size]


BODY_OVERLAP = 4096
"""Characters redacted past the cap before the cut, so a secret straddling the cap is
redacted whole rather than left as a fragment no pattern matches."""


def body_text(value: Any, cap: int, redact: Callable[[str], str] | None) -> str | None:
    """A captured body as stored: JSON text (a string as it is), redacted, then cut to `cap`."""
    if value is None:
        return None
    if isinstance(value, str):
        text = value
    else:
        try:
            text = orjson.dumps(value, default=_plain).decode()
        except TypeError:
            return None  # not serialisable: not stored rather than stored wrong
    text = text[: cap + BODY_OVERLAP]
    if redact is not None:
        text = redact(text)
    return text[:cap]


def _plain(value: Any) -> Any:
    dump = getattr(value, "model_dump", None)
    if dump is None:
        raise TypeError
    return dump(mode="json")


def _record(row: SpendRow) -> dict[str, Any]:
    return {
        "row_id": row.row_id,
        "at": row.at,
        "request_id": _text(row.request_id, 200),
        "key_id": _text(row.key_id, 64),
        "team_id": _text(row.team_id, 64),
        "end_user": _text(row.end_user, 200),
        "model": _text(row.model, 200),
        "deployment": _text(row.deployment, 200),
        "provider": _text(row.provider, 64),
        "prompt_tokens": row.prompt_tokens,
        "completion_tokens": row.completion_tokens,
        "cached_tokens": row.cached_tokens,
        "reasoning_tokens": row.reasoning_tokens,
        "cost_usd": row.cost_usd,
        "estimated": row.estimated,
        "latency_s": row.latency_s,
        "ttft_s": row.ttft_s,
        "status": row.status,
        "error": _text(row.error, 200),
        "attempts": row.attempts,
        "fallback": _text(row.fallback, 200),
        "operation": _text(row.operation, 32) or "",
        "stream": row.stream,
        "cache": _text(row.cache, 16),
        "cache_saved_usd": row.cache_saved_usd,
        "template_id": _text(row.template_id, 200),
        "template_version": _text(row.template_version, 64),
        "attempt_log": encode_attempts(row.attempt_log),
    }


def _with_bodies(
    record: dict[str, Any], row: SpendRow, cap: int, redact: Callable[[str], str] | None
) -> dict[str, Any]:
    bodies = row.bodies or (None, None)
    record["request_body"] = body_text(bodies[0], cap, redact)
    record["response_body"] = body_text(bodies[1], cap, redact)
    return record


def rollup(rows: Sequence[SpendRow]) -> list[dict[str, Any]]:
    """The batch's sums per UTC day, key, team, model and end user."""
    sums: dict[tuple[str, str, str, str, str], dict[str, Any]] = {}
    for row in rows:
        group = (
            row.at.astimezone(UTC).date().isoformat(),
            _text(row.key_id, 64) or "",
            _text(row.team_id, 64) or "",
            _text(row.model, 200) or "",
            _text(row.end_user, 200) or "",
        )
        entry = sums.get(group)
        if entry is None:
            entry = dict(zip(("day", "key_id", "team_id", "model", "end_user"), group, strict=True))
            entry.update(dict.fromkeys(_SUMS, 0))
            sums[group] = entry
        entry["requests"] += 1
        entry["prompt_tokens"] += row.prompt_tokens
        entry["completion_tokens"] += row.completion_tokens
        entry["cached_tokens"] += row.cached_tokens
        entry["reasoning_tokens"] += row.reasoning_tokens
        if row.cost_usd is None:
            entry["unpriced_requests"] += 1
        else:
            entry["cost_nanos"] += to_nanos(row.cost_usd)
        if row.error is not None or row.status >= 400:
            entry["errors"] += 1
    return list(sums.values())


RECENT_WRITES = 8
"""Writes whose row ids a sink remembers, to tell a batch sent again from a new one."""
SPEND_COLUMNS = tuple(column.name for column in spend_logs.columns if column.name != "id")
"""The columns a spend row fills, in the order of `PlainInsert`'s parameters."""


class PlainInsert:
    """`statement` compiled once for `dialect` over `SPEND_COLUMNS`, and each record's
    parameters as the driver takes them: through the columns' own bind processors (dates,
    decimals), in the compiled statement's order."""

    def __init__(self, statement: sa.Insert, dialect: Dialect) -> None:
        compiled = statement.compile(dialect=dialect, column_keys=list(SPEND_COLUMNS))
        self.sql = compiled.string
        self.positional = bool(compiled.positional)
        names = list(compiled.positiontup or ()) if self.positional else list(compiled.binds)
        columns = {compiled.binds[name].key: name for name in names}
        if set(columns) != set(SPEND_COLUMNS):
            raise RuntimeError(f"the spend insert's parameters are not its columns: {sorted(columns)}")
        self.keys = [compiled.binds[name].key for name in names]
        self.names = names
        types = [spend_logs.c[key].type.dialect_impl(dialect) for key in self.keys]
        processors = enumerate(kind.bind_processor(dialect) for kind in types)
        self._processed = [(index, process) for index, process in processors if process is not None]
        self._values = itemgetter(*self.keys)

    def parameters(self, records: Sequence[Mapping[str, Any]]) -> list[Any]:
        found: list[Any] = []
        for record in records:
            values = list(self._values(record))
            for index, process in self._processed:
                values[index] = process(values[index])
            found.append(tuple(values) if self.positional else dict(zip(self.names, values, strict=True)))
        return found


class DatabaseSink:
    """Writes spend rows and their daily rollup to the gateway's database, and the bodies
    captured for keys or teams with `log_bodies`: redacted by `redact` (the secrets the log
    filter scrubs), cut to `max_body_bytes` characters, cleared after `body_retention_days`."""

    def __init__(
        self,
        database: Database,
        *,
        redact: Callable[[str], str] | None = None,
        max_body_bytes: int = 16_384,
        body_retention_days: int | None = None,
    ) -> None:
        self.database = database
        self.redact = redact
        self.max_body_bytes = max_body_bytes
        self.body_retention_days = body_retention_days
        dialect = sqlite if database.is_sqlite else postgresql
        self._insert = dialect.insert(spend_logs).on_conflict_do_nothing(index_elements=["row_id"])
        self._returning = self._insert.returning(spend_logs.c.row_id)
        upsert = dialect.insert(usage_daily)
        self._upsert_statement = upsert.on_conflict_do_update(
            index_elements=["day", "key_id", "team_id", "model", "end_user"],
            set_={name: usage_daily.c[name] + upsert.excluded[name] for name in _SUMS},
        )
        self._plain: PlainInsert | None = None
        self._failed: set[str] = set()
        """Ids of rows in a batch whose write raised: it may have been committed anyway."""
        self._recent: deque[frozenset[str]] = deque(maxlen=RECENT_WRITES)
        """Ids of the rows of the last writes that returned, which a caller that did not see
        them return (a lost acknowledgement) may send again."""

    async def write(self, rows: Sequence[SpendRow]) -> None:
        """One transaction: the rows not stored yet, and their daily sums.

        A row is in the log already only if this sink was given it before (each `row_id` is
        128 random bits made in this process, and a batch is retried at once): so a batch with
        no row among the last writes' or the failed ones is inserted whole, through a
        statement compiled once, its parameters as plain tuples (SQLAlchemy's per-row
        parameter processing was most of a flush's CPU, taken from the requests on the
        gateway's core). Any other batch goes through `INSERT … ON CONFLICT DO NOTHING
        RETURNING`, and only what comes back is rolled up."""
        if not rows:
            return
        cap, redact = self.max_body_bytes, self.redact
        records = [_with_bodies(_record(row), row, cap, redact) for row in rows]
        ids = frozenset(row.row_id for row in rows)
        retried = not ids.isdisjoint(self._failed) or any(not ids.isdisjoint(done) for done in self._recent)
        try:
            async with self.database.engine.begin() as conn:
                if retried:
                    result = await conn.execute(self._returning, records)
                    inserted = {row_id for (row_id,) in result.all()}
                    new = [row for row in rows if row.row_id in inserted]
                else:
                    plain = self._plain or self._compile(conn.dialect)
                    await conn.exec_driver_sql(plain.sql, plain.parameters(records))
                    new = list(rows)
                if new:
                    await conn.execute(self._upsert_statement, rollup(new))
        except BaseException:
            self._failed.update(ids)
            raise
        self._failed.difference_update(ids)
        self._recent.append(ids)

    def _compile(self, dialect: Dialect) -> PlainInsert:
        self._plain = PlainInsert(self._insert, dialect)
        return self._plain

    async def prune(self, before: datetime | None) -> int:
        """Delete log rows from before `before` (None: none), and clear the bodies of rows
        past `body_retention_days`; how many rows were deleted."""
        deleted = 0
        async with self.database.engine.begin() as conn:
            if before is not None:
                result = await conn.execute(spend_logs.delete().where(spend_logs.c.at < before))
                deleted = int(result.rowcount or 0)
            if self.body_retention_days is not None:
                cutoff = datetime.now(UTC) - timedelta(days=self.body_retention_days)
                table = spend_logs
                await conn.execute(
                    table.update()
                    .where(table.c.at < cutoff)
                    .where(sa.or_(table.c.request_body.is_not(None), table.c.response_body.is_not(None)))
                    .values(request_body=None, response_body=None)
                )
        return deleted


@dataclass(frozen=True, slots=True)
class Usage:
    group: str | None
    requests: int
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int
    reasoning_tokens: int
    cost_usd: Decimal | None
    """Priced requests' cost; None when every request in the group was unpriced."""
    unpriced_requests: int
    errors: int


@dataclass(frozen=True, slots=True)
class LogPage:
    items: list[dict[str, Any]]
    next_cursor: str | None


class BadCursor(ValueError):
    pass


def encode_cursor(at: datetime, row_id: int) -> str:
    return base64.urlsafe_b64encode(orjson.dumps([at.isoformat(), row_id])).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    try:
        at, row_id = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        moment = datetime.fromisoformat(at)
        if not isinstance(row_id, int) or isinstance(row_id, bool) or not 0 <= row_id < 2**63:
            raise ValueError
    except (ValueError, TypeError, binascii.Error, orjson.JSONDecodeError):
        raise BadCursor("not a cursor this API returned") from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)), row_id


class SpendStore:
    """Reads for the admin API: usage from the daily rollup, log rows a page at a time."""

    def __init__(self, database: Database) -> None:
        self.database = database

    async def usage(
        self,
        group_by: GroupBy,
        start: date | None = None,
        end: date | None = None,
        key_id: str | None = None,
        team_id: str | None = None,
    ) -> list[Usage]:
        """Sums per group over the days from `start` to `end`, both included."""
        table = usage_daily
        column = table.c[_GROUP_COLUMNS[group_by]]
        query = sa.select(column, *(sa.func.sum(table.c[name]) for name in _SUMS)).group_by(column)
        if start is not None:
            query = query.where(table.c.day >= start.isoformat())
        if end is not None:
            query = query.where(table.c.day <= end.isoformat())
        if key_id is not None:
            query = query.where(table.c.key_id == key_id)
        if team_id is not None:
            query = query.where(table.c.team_id == team_id)
        async with self.database.engine.connect() as conn:
            result = await conn.execute(query.order_by(column))
            found = result.all()
        usages = []
        for group, *totals in found:
            values = dict(zip(_SUMS, (int(value or 0) for value in totals), strict=True))
            priced = values["requests"] - values["unpriced_requests"]
            usages.append(
                Usage(
                    group=group or None,
                    requests=values["requests"],
                    prompt_tokens=values["prompt_tokens"],
                    completion_tokens=values["completion_tokens"],
                    cached_tokens=values["cached_tokens"],
                    reasoning_tokens=values["reasoning_tokens"],
                    cost_usd=to_usd(values["cost_nanos"]) if priced else None,
                    unpriced_requests=values["unpriced_requests"],
                    errors=values["errors"],
                )
            )
        return usages

    async def logs(
        self,
        limit: int,
        cursor: str | None = None,
        *,
        key_id: str | None = None,
        team_id: str | None = None,
        model: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> LogPage:
        """Log rows newest first, `limit` at a time; `start` included, `end` excluded."""
        filters = {"key_id": key_id, "team_id": team_id, "model": model}
        rows, next_cursor = await newest_first(
            self.database, sa.select(spend_logs), filters, start, end, cursor, limit
        )
        return LogPage([dict(row._mapping) for row in rows], next_cursor)


def retention_cutoff(now: datetime, days: int) -> datetime:
    return now - timedelta(days=days)


async def newest_first(
    database: Database,
    query: sa.Select[Any],
    filters: Mapping[str, str | int | None],
    start: datetime | None,
    end: datetime | None,
    cursor: str | None,
    limit: int,
) -> tuple[list[sa.Row[Any]], str | None]:
    """One page of `spend_logs` rows, newest first: `filters` are equalities (None: any),
    `start` included, `end` excluded, resumed after `cursor`; and the next page's cursor."""
    table = spend_logs
    for column, value in filters.items():
        if value is not None:
            query = query.where(table.c[column] == value)
    if start is not None:
        query = query.where(table.c.at >= start)
    if end is not None:
        query = query.where(table.c.at < end)
    if cursor is not None:
        at, row_id = decode_cursor(cursor)
        query = query.where(sa.or_(table.c.at < at, sa.and_(table.c.at == at, table.c.id < row_id)))
    query = query.order_by(table.c.at.desc(), table.c.id.desc()).limit(limit + 1)
    async with database.engine.connect() as conn:
        found = list((await conn.execute(query)).all())
    rows = found[:limit]
    last = rows[-1] if len(found) > limit else None
    return rows, encode_cursor(last.at, last.id) if last is not None else None
