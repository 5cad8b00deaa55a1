"""The database-backed response store (store/responses_db.py) on SQLite and PostgreSQL:
per-owner records shared by every store on one database, TTL, pruning, the local copy."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from llm_gateway.core.errors import ResponsesUnavailable
from llm_gateway.store.db import Database
from llm_gateway.store.responses import StoredResponse
from llm_gateway.store.responses_db import DatabaseResponseStore
from llm_gateway.store.tables import responses


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 12, 2, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def record(response_id: str, owner: str = "key-a") -> StoredResponse:
    conversation = (
        {"role": "user", "content": "hello ünïcode"},
        {"type": "message", "id": "msg_1", "role": "assistant", "content": [{"type": "output_text"}]},
    )
    response = {"id": response_id, "object": "response", "output": [conversation[1]]}
    return StoredResponse(response_id, owner, response, conversation, "openai/gpt", True)


async def test_another_store_on_the_same_database_reads_it(database: Database) -> None:
    writer = DatabaseResponseStore(database, ttl=3600)
    reader = DatabaseResponseStore(database, ttl=3600)
    await writer.put(record("resp_1"))
    got = await reader.get("key-a", "resp_1")
    assert got == record("resp_1")
    assert got is not None and got.conversation[0]["content"] == "hello ünïcode"


async def test_a_foreign_or_missing_id_is_none(database: Database) -> None:
    store = DatabaseResponseStore(database, ttl=3600)
    other = DatabaseResponseStore(database, ttl=3600)
    await store.put(record("resp_1", "key-a"))
    assert await other.get("key-b", "resp_1") is None
    assert await other.get("key-a", "resp_missing") is None
    assert await other.delete("key-b", "resp_1") is False
    assert await other.get("key-a", "resp_1") is not None


async def test_a_delete_anywhere_is_seen_by_an_uncached_read(database: Database) -> None:
    first = DatabaseResponseStore(database, ttl=3600)
    second = DatabaseResponseStore(database, ttl=3600)
    await first.put(record("resp_1"))
    assert await second.delete("key-a", "resp_1") is True
    assert await second.delete("key-a", "resp_1") is False
    assert await first.get("key-a", "resp_1", cached=False) is None
    assert await first.get("key-a", "resp_1") is None  # the uncached read dropped the local copy


async def test_the_local_copy_answers_without_the_database(database: Database) -> None:
    store = DatabaseResponseStore(database, ttl=3600)
    await store.put(record("resp_1"))
    broken = Database("sqlite:////nonexistent-dir/none.db")
    store.database = broken
    try:
        assert await store.get("key-a", "resp_1") is not None
        with pytest.raises(ResponsesUnavailable):
            await store.get("key-a", "resp_1", cached=False)
        await store.put(record("resp_2"))  # logged, not raised: this instance still has it
        assert await store.get("key-a", "resp_2") is not None
    finally:
        await broken.aclose()


async def test_expired_rows_are_not_read_and_are_pruned(database: Database) -> None:
    clock = Clock()
    store = DatabaseResponseStore(database, ttl=60, clock=clock)
    await store.put(record("resp_old"))
    clock.now += timedelta(seconds=30)
    await store.put(record("resp_new"))
    clock.now += timedelta(seconds=31)
    reader = DatabaseResponseStore(database, ttl=60, clock=clock)
    assert await reader.get("key-a", "resp_old") is None
    assert await reader.get("key-a", "resp_new") is not None
    assert await store.prune() == 1
    assert await store.prune() == 0
    assert await reader.get("key-a", "resp_new", cached=False) is not None


async def test_writing_the_same_id_again_replaces_it(database: Database) -> None:
    store = DatabaseResponseStore(database, ttl=3600)
    await store.put(record("resp_1"))
    changed = StoredResponse("resp_1", "key-a", {"id": "resp_1", "status": "completed"}, ())
    await store.put(changed)
    got = await DatabaseResponseStore(database, ttl=3600).get("key-a", "resp_1")
    assert got == changed


async def rows(database: Database) -> int:
    async with database.engine.connect() as conn:
        return int((await conn.execute(sa.select(sa.func.count()).select_from(responses))).scalar_one())


async def test_the_background_pruner_deletes_expired_rows(database: Database) -> None:
    clock = Clock()
    store = DatabaseResponseStore(database, ttl=1, clock=clock, prune_every=0.01)
    await store.put(record("resp_1"))
    clock.now += timedelta(seconds=2)
    assert await rows(database) == 1
    await store.start()
    for _ in range(200):
        if await rows(database) == 0:
            break
        await asyncio.sleep(0.01)
    await store.aclose()
    assert await rows(database) == 0
