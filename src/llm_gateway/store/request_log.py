"""The request log: the spend log read request by request, with each request's attempts.

Every governed request already has a spend row (`store/spend.py`); the request log is that
row read back whole, filtered by key, team, model, status and time, newest first, a page at
a time with the spend log's cursor, plus a lookup by request id. Each filter has an index
(column, at, id) (`tables.REQUEST_FILTERS`), so a page costs a range scan of one index
whatever the log's size (`tests/unit/store/test_request_log_perf.py` holds it under 100 ms
at a million rows).

The attempts are stored on the row as compact JSON text (`attempt_log`): a list of objects
with only the fields that are set, encoded by the flusher, never on the request's path.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
import sqlalchemy as sa

from llm_gateway.store.db import Database
from llm_gateway.store.spend_db import LogPage, newest_first
from llm_gateway.store.tables import spend_logs

BODY_COLUMNS = ("request_body", "response_body")
"""Read by the lookup by id only: a page stays small."""


def decode_attempts(text: str | None) -> list[dict[str, Any]]:
    """The stored attempts, every field present (None/False where it was not stored)."""
    if not text:
        return []
    try:
        items = orjson.loads(text)
    except orjson.JSONDecodeError:
        return []  # a row is never refused for a damaged column; its attempts are unknown
    if not isinstance(items, list):
        return []
    defaults: dict[str, Any] = {"ttft_s": None, "error": None, "status": None, "group": None, "hedge": False}
    return [{**defaults, **item} for item in items if isinstance(item, dict)]


def _entry(row: sa.Row[Any]) -> dict[str, Any]:
    item = dict(row._mapping)
    item["attempt_log"] = decode_attempts(item.get("attempt_log"))
    return item


class RequestLog:
    """Reads for `/admin/requests`."""

    def __init__(self, database: Database) -> None:
        self.database = database

    async def page(
        self,
        limit: int,
        cursor: str | None = None,
        *,
        filters: dict[str, str | int | None] | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> LogPage:
        """Requests newest first, `limit` at a time; `filters` are equalities on
        `tables.REQUEST_FILTERS` (None: any); `start` included, `end` excluded."""
        query = sa.select(*(c for c in spend_logs.c if c.name not in BODY_COLUMNS))
        rows, next_cursor = await newest_first(self.database, query, filters or {}, start, end, cursor, limit)
        return LogPage([_entry(row) for row in rows], next_cursor)

    async def get(self, request_id: str) -> dict[str, Any] | None:
        """The request with that id (the newest, should a client have reused an id), or None."""
        table = spend_logs
        query = (
            sa.select(table)
            .where(table.c.request_id == request_id)
            .order_by(table.c.at.desc(), table.c.id.desc())
            .limit(1)
        )
        async with self.database.engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return None if row is None else _entry(row)
