"""Stored Responses API answers in the gateway's database (`responses.store: database`, the
default), so a follow-up with `previous_response_id` works on any instance sharing the
database, and after a restart.

Each record is one row of `responses` (store/tables.py), keyed by id and owner: a foreign
id is simply not found. The row holds the response and the whole conversation up to it as
JSON text; that content is what the feature exists to keep (docs/security.md), and no
secret is ever part of it (the owner is a key's id, never its secret).

The hot path stays cheap: a write goes to a local write-through copy (a short-lived
`MemoryResponseStore`) and to the database, once per stored response; a follow-up that
reaches the instance which stored (or last read) its predecessor is answered from the
local copy without a round trip. `GET /v1/responses/{id}` reads the database
(`cached=False`), so it sees a delete made on another instance at once; a follow-up may
see it only when the local copy expires (`LOCAL_TTL_SECONDS`). Rows past their time to
live are never read, and a background task deletes them every `prune_every` seconds.

A write that fails is logged (without its content) and the answer still goes out: this
instance can continue it from its local copy. A read that fails is a 503, never a 404
that would tell a client its conversation is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from llm_gateway.core.errors import ResponsesUnavailable
from llm_gateway.store.db import Database
from llm_gateway.store.responses import DEFAULT_MAX_ENTRIES, MemoryResponseStore, StoredResponse
from llm_gateway.store.tables import responses

log = logging.getLogger("llm_gateway.responses")

LOCAL_TTL_SECONDS = 300.0
PRUNE_EVERY_SECONDS = 3600.0


def _now() -> datetime:
    return datetime.now(UTC)


class DatabaseResponseStore:
    """Records in `database`, each living `ttl` seconds from its write, with a local copy."""

    def __init__(
        self,
        database: Database,
        ttl: float,
        *,
        local_entries: int = DEFAULT_MAX_ENTRIES,
        local_ttl: float = LOCAL_TTL_SECONDS,
        prune_every: float = PRUNE_EVERY_SECONDS,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        if ttl <= 0:
            raise ValueError("a response store needs a positive TTL")
        self.database = database
        self.ttl = timedelta(seconds=ttl)
        self.local = MemoryResponseStore(local_entries, min(local_ttl, ttl))
        self.prune_every = prune_every
        self._clock = clock
        self._pruner: asyncio.Task[None] | None = None

    async def get(self, owner: str, response_id: str, *, cached: bool = True) -> StoredResponse | None:
        if cached:
            record = self.local.lookup(owner, response_id)
            if record is not None:
                return record
        query = sa.select(responses).where(
            responses.c.id == response_id,
            responses.c.owner == owner,
            responses.c.expires_at > self._clock(),
        )
        try:
            async with self.database.engine.connect() as conn:
                row = (await conn.execute(query)).mappings().first()
        except Exception as exc:
            log.warning("could not read a stored response: %s", type(exc).__name__)
            raise ResponsesUnavailable("Stored responses are unavailable; try again later.") from None
        if row is None:
            self.local.drop(owner, response_id)
            return None
        record = _from_row(row)
        self.local.keep(record)
        return record

    async def put(self, record: StoredResponse) -> None:
        self.local.keep(record)
        now = self._clock()
        try:
            values = _to_row(record, now, now + self.ttl)
            insert = (sqlite.insert if self.database.is_sqlite else postgresql.insert)(responses)
            statement = insert.values(values).on_conflict_do_update(
                index_elements=["id", "owner"],
                set_={name: insert.excluded[name] for name in values if name not in ("id", "owner")},
            )
            async with self.database.engine.begin() as conn:
                await conn.execute(statement)
        except Exception as exc:
            log.warning(
                "could not store response %s in the database (%s); only this instance can continue it",
                record.id,
                type(exc).__name__,
            )

    async def delete(self, owner: str, response_id: str) -> bool:
        local = self.local.drop(owner, response_id)
        statement = responses.delete().where(
            responses.c.id == response_id,
            responses.c.owner == owner,
            responses.c.expires_at > self._clock(),
        )
        try:
            async with self.database.engine.begin() as conn:
                deleted = (await conn.execute(statement)).rowcount or 0
        except Exception as exc:
            log.warning("could not delete a stored response: %s", type(exc).__name__)
            raise ResponsesUnavailable("Stored responses are unavailable; try again later.") from None
        return local or deleted > 0

    async def prune(self) -> int:
        """Delete the rows past their time to live; how many went."""
        statement = responses.delete().where(responses.c.expires_at <= self._clock())
        async with self.database.engine.begin() as conn:
            return int((await conn.execute(statement)).rowcount or 0)

    async def start(self) -> None:
        """Start the pruner (the database was migrated by whoever owns it, before this)."""
        self._pruner = asyncio.get_running_loop().create_task(self._prune_forever())

    async def _prune_forever(self) -> None:
        while True:
            try:
                deleted = await self.prune()
            except Exception as exc:
                log.warning("could not delete expired stored responses: %s", type(exc).__name__)
            else:
                if deleted:
                    log.info("deleted %d expired stored response(s)", deleted)
            await asyncio.sleep(self.prune_every)

    async def aclose(self) -> None:
        """Stop the pruner; the engine belongs to the database's owner, who disposes of it."""
        if self._pruner is not None:
            self._pruner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pruner
            self._pruner = None


def _to_row(record: StoredResponse, now: datetime, expires: datetime) -> dict[str, Any]:
    return {
        "id": record.id,
        "owner": record.owner,
        "response": orjson.dumps(record.response).decode(),
        "conversation": orjson.dumps(record.conversation).decode(),
        "deployment": record.deployment,
        "upstream_stored": record.upstream_stored,
        "created_at": now,
        "expires_at": expires,
    }


def _from_row(row: Any) -> StoredResponse:
    conversation = orjson.loads(row["conversation"])
    return StoredResponse(
        id=row["id"],
        owner=row["owner"],
        response=orjson.loads(row["response"]),
        conversation=tuple(conversation),
        deployment=row["deployment"],
        upstream_stored=bool(row["upstream_stored"]),
    )
