"""Keys and teams on SQLite and PostgreSQL alike: the same tests, parametrized by backend."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from llm_gateway.core.errors import Conflict, InvalidRequest
from llm_gateway.store.db import HEAD_REVISION, MIGRATIONS, Database, async_url, current_revision, sqlite_path
from llm_gateway.store.hashing import hash_secret
from llm_gateway.store.keys import KeyStore
from llm_gateway.store.teams import TeamStore


def test_plain_urls_get_the_async_drivers() -> None:
    assert async_url("sqlite:///./llm-gateway.db") == "sqlite+aiosqlite:///./llm-gateway.db"
    assert async_url("postgresql://u:p@h/db") == "postgresql+asyncpg://u:p@h/db"
    assert async_url("postgres://h/db") == "postgresql+asyncpg://h/db"
    assert async_url("postgresql+asyncpg://h/db") == "postgresql+asyncpg://h/db"
    assert sqlite_path("sqlite:///./a.db") is not None and sqlite_path("sqlite:///:memory:") is None


async def test_migrations_are_idempotent_and_safe_to_run_together(database_url: str) -> None:
    databases = [Database(database_url) for _ in range(3)]
    try:
        await asyncio.gather(*(db.migrate() for db in databases))
        await databases[0].migrate()
        async with databases[0].engine.connect() as conn:
            version = await conn.scalar(sa.text("SELECT version_num FROM alembic_version"))
        assert version == "0008_prompt_templates"
    finally:
        for db in databases:
            await db.aclose()


def test_the_head_revision_constant_is_alembics_head() -> None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    assert ScriptDirectory.from_config(config).get_current_head() == HEAD_REVISION


async def test_a_database_at_head_is_started_without_alembic(database_url: str) -> None:
    first = Database(database_url)
    try:
        async with first.engine.connect() as conn:
            assert await conn.run_sync(current_revision) in (None, HEAD_REVISION)
        await first.migrate()
        async with first.engine.connect() as conn:
            assert await conn.run_sync(current_revision) == HEAD_REVISION
        script = [sys.executable, "-c", START_AT_HEAD, database_url]
        loaded = subprocess.run(script, capture_output=True, text=True, timeout=60, check=True)
        assert loaded.stdout.strip() == "alembic not imported"
    finally:
        await first.aclose()


START_AT_HEAD = """
import asyncio, sys
from llm_gateway.store.db import Database
async def main():
    db = Database(sys.argv[1])
    await db.migrate()
    await db.aclose()
asyncio.run(main())
print("alembic imported" if "alembic" in sys.modules else "alembic not imported")
"""


async def test_sqlite_is_in_wal_mode(tmp_path: object) -> None:
    db = Database(f"sqlite:///{tmp_path}/wal.db")
    try:
        await db.migrate()
        async with db.engine.connect() as conn:
            assert (await conn.scalar(sa.text("PRAGMA journal_mode"))) == "wal"
    finally:
        await db.aclose()


async def test_a_key_is_stored_as_its_hash_only(database: Database) -> None:
    keys = KeyStore(database.engine)
    team = await TeamStore(database.engine).create("Team", {"models": ["gpt-*"], "rpm": 100}, "t1")
    values = {
        "name": "app1",
        "team_id": "t1",
        "models": ["gpt-4o*"],
        "rpm": 60,
        "tpm": 100_000,
        "max_parallel": 4,
        "budget_usd": Decimal("10.5"),
        "budget_period": "monthly",
        "max_hold_usd": Decimal("0.25"),
        "metadata": {"owner": "ops", "nested": {"n": [1, 2]}},
    }
    key, secret = await keys.create(values)
    assert secret.startswith("sk-gw-") and len(secret) >= 6 + 43
    assert key.secret_hash == hash_secret(secret) and key.key_hint == f"sk-gw-…{secret[-4:]}"
    assert key.team_id == team.id and key.grants.models == ("gpt-4o*",)
    assert key.grants.limits.budget_usd == Decimal("10.5") and key.grants.budget_period == "monthly"
    assert key.grants.metadata == {"owner": "ops", "nested": {"n": [1, 2]}}
    assert key.created_at.tzinfo is not None
    async with database.engine.connect() as conn:
        rows = (await conn.execute(sa.text("SELECT * FROM keys"))).all()
    assert secret not in repr(rows) and secret[6:] not in repr(rows)


async def test_pages_and_search(database: Database) -> None:
    keys = KeyStore(database.engine)
    await TeamStore(database.engine).create("T", {}, "t1")
    for index in range(7):
        await keys.create({"name": f"app_{index}%", "team_id": "t1" if index % 2 else None})
    await keys.create({"name": "other"})
    seen: list[str] = []
    cursor = None
    while True:
        page = await keys.page(3, cursor)
        seen += [key.id for key in page.items]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert len(seen) == 8 == len(set(seen)) and seen == sorted(seen)
    assert len((await keys.page(50, name="APP_")).items) == 7
    assert len((await keys.page(50, name="p_1%")).items) == 1  # % and _ are literal
    assert len((await keys.page(50, name="%")).items) == 7
    assert len((await keys.page(50, team_id="t1")).items) == 3
    assert (await keys.page(50, name="' OR 1=1 --")).items == []
    with pytest.raises(InvalidRequest):
        await keys.page(10, "not-a-cursor!")


async def test_update_revoke_rotate(database: Database) -> None:
    now = datetime(2030, 1, 1, tzinfo=UTC)
    keys = KeyStore(database.engine, now=lambda: now)
    key, first = await keys.create({"name": "app"})
    revision = await keys.revision()
    updated = await keys.update(key.id, {"rpm": 5, "blocked": True, "models": None})
    assert updated is not None and updated.grants.rpm == 5 and updated.blocked
    assert await keys.revision() > revision
    rotated = await keys.rotate(key.id, grace_seconds=60)
    assert rotated is not None
    record, second = rotated
    assert second != first and record.secret_hash == hash_secret(second)
    assert record.previous_hash == hash_secret(first)
    assert record.previous_until == now + timedelta(seconds=60)
    record, _third = (await keys.rotate(key.id)) or (None, None)  # type: ignore[assignment]
    assert record is not None and record.previous_hash == hash_secret(second)
    assert record.previous_until == now  # no grace: the old secret stops at once
    revoked = await keys.revoke(key.id)
    assert revoked is not None and revoked.revoked_at == now
    with pytest.raises(Conflict):
        await keys.update(key.id, {"rpm": 1})
    with pytest.raises(Conflict):
        await keys.rotate(key.id)
    assert await keys.update("key_missing", {"rpm": 1}) is None
    assert await keys.rotate("key_missing") is None
    assert await keys.count_live() == 0


async def test_teams_unique_names_and_guarded_delete(database: Database) -> None:
    teams, keys = TeamStore(database.engine), KeyStore(database.engine)
    team = await teams.create("Search", {"budget_usd": Decimal(100), "budget_period": "daily"})
    assert team.id.startswith("team_") and team.grants.limits.budget_period == "daily"
    with pytest.raises(Conflict):
        await teams.create("Search", {})
    with pytest.raises(InvalidRequest):
        await keys.create({"name": "x", "team_id": "nope"})
    key, _ = await keys.create({"name": "x", "team_id": team.id})
    with pytest.raises(Conflict):
        await teams.delete(team.id)
    await keys.revoke(key.id)
    assert await teams.delete(team.id)
    detached = await keys.get(key.id)
    assert detached is not None and detached.team_id is None
    assert not await teams.delete(team.id)
    assert [t.name for t in (await teams.page(10, name="sea")).items] == []
