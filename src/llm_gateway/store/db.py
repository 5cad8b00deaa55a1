"""The database connection: one async engine per process, and the migrations that shape it.

`sqlite:///file.db` (the default, created on first start, in WAL mode so readers never
wait for the one writer) or `postgresql://…` for several instances. The URL's plain
scheme is mapped to the async driver here (aiosqlite, asyncpg). The migrations ship in
the package (`store/migrations`) and run at start-up and from `llm-gateway db upgrade`;
concurrent starts are serialised (a file lock for SQLite, an advisory lock for
PostgreSQL), so several workers or instances may start together.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import AsyncAdaptedQueuePool

MIGRATIONS = Path(__file__).with_name("migrations")
HEAD = "head"
HEAD_REVISION = "0008_prompt_templates"
"""The newest migration the package ships (a unit test checks it against Alembic's head).
A start-up over a database already there reads its version and skips Alembic, whose import
alone costs ~10 MiB of memory and a tenth of a second."""
_DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "sqlite+aiosqlite": "sqlite+aiosqlite",
    "postgresql": "postgresql+asyncpg",
    "postgres": "postgresql+asyncpg",
    "postgresql+asyncpg": "postgresql+asyncpg",
}
_PG_MIGRATION_LOCK = 0x6C6C6D67  # any constant shared by every instance


def async_url(url: str) -> str:
    """`url` with its scheme replaced by the async driver's (`postgresql://` → `postgresql+asyncpg://`)."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in _DRIVERS:
        raise ValueError(f"unsupported database URL scheme {scheme!r}")
    return f"{_DRIVERS[scheme]}://{rest}"


def sqlite_path(url: str) -> Path | None:
    """The file a SQLite URL names (None: in memory, or not SQLite)."""
    scheme, _, rest = url.partition("://")
    if not scheme.startswith("sqlite"):
        return None
    path = rest[1:].split("?", 1)[0]
    return None if path in ("", ":memory:") else Path(path)


class Database:
    """The engine and migrations for one URL. Building it does no I/O."""

    def __init__(self, url: str) -> None:
        self.url = async_url(url)
        self.path = sqlite_path(url)
        self.is_sqlite = self.url.startswith("sqlite")
        options: dict[str, Any] = {}
        if self.is_sqlite and self.path is None:
            # One connection, kept and handed out in turn: each new one would be a new empty database.
            options = {"poolclass": AsyncAdaptedQueuePool, "pool_size": 1, "max_overflow": 0}
        elif not self.is_sqlite:
            options = {"pool_pre_ping": True, "pool_size": 5, "max_overflow": 5}
        self.engine: AsyncEngine = create_async_engine(self.url, **options)
        if self.is_sqlite:
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)

    async def migrate(self, revision: str = HEAD) -> None:
        """Bring the schema to `revision` (default: the newest the package ships)."""
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        async with self._file_lock(), self.engine.begin() as conn:
            await conn.run_sync(self._upgrade, revision)

    def _upgrade(self, conn: Connection, revision: str) -> None:
        if not self.is_sqlite:
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:id)"), {"id": _PG_MIGRATION_LOCK})
        if revision == HEAD and current_revision(conn) == HEAD_REVISION:
            return
        from alembic import command  # only when there is something to migrate
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.attributes["connection"] = conn
        command.upgrade(config, revision)

    @contextlib.asynccontextmanager
    async def _file_lock(self) -> AsyncIterator[None]:
        """An exclusive lock on `<file>.lock`, waited for in a thread (the loop keeps running)."""
        if self.path is None:
            yield
            return
        with open(f"{self.path}.lock", "a") as lock:
            await asyncio.to_thread(fcntl.flock, lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    async def aclose(self) -> None:
        await self.engine.dispose()


def current_revision(conn: Connection) -> str | None:
    """The schema's Alembic revision, read without Alembic; None before the first migration."""
    if not sa.inspect(conn).has_table("alembic_version"):
        return None
    return conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar_one_or_none()


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=5000")
        cursor.execute("PRAGMA journal_mode=WAL")
    finally:
        cursor.close()
