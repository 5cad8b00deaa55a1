"""Prompt templates added through the admin API: one row per version, in the gateway's database.

A version, once added, is never changed (a spend row names it, so its meaning must stay):
a new text is a new version. Every write bumps the `templates` revision in its own
transaction, which is what instances compare to know they must reload (services/
stored_templates.py); the value a version was added at orders a name's versions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from llm_gateway.core.errors import Conflict
from llm_gateway.store.tables import prompt_templates, revisions

REVISION = "templates"
Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class StoredTemplate:
    name: str
    version: str
    spec: dict[str, Any]
    """The version as the admin API validated it (`PromptTemplate`'s fields)."""
    created_at: datetime


async def _bump(conn: AsyncConnection) -> int:
    await conn.execute(
        revisions.update().where(revisions.c.name == REVISION).values(value=revisions.c.value + 1)
    )
    return await _revision(conn)


async def _revision(conn: AsyncConnection) -> int:
    value = await conn.scalar(sa.select(revisions.c.value).where(revisions.c.name == REVISION))
    return int(value or 0)


class TemplateStore:
    def __init__(self, engine: AsyncEngine, now: Clock = utcnow) -> None:
        self._engine = engine
        self._now = now

    async def revision(self) -> int:
        async with self._engine.connect() as conn:
            return await _revision(conn)

    async def all(self) -> list[StoredTemplate]:
        """Every stored version, each name's in the order they were added."""
        query = sa.select(prompt_templates).order_by(prompt_templates.c.name, prompt_templates.c.seq)
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [
            StoredTemplate(row["name"], row["version"], orjson.loads(row["spec"]), row["created_at"])
            for row in rows
        ]

    async def add(self, name: str, spec: dict[str, Any]) -> StoredTemplate:
        """Add one version (`spec["version"]`); 409 when the name already has it."""
        version = str(spec["version"])
        now = self._now()
        try:
            async with self._engine.begin() as conn:
                seq = await _bump(conn)
                await conn.execute(
                    prompt_templates.insert().values(
                        name=name, version=version, seq=seq, spec=orjson.dumps(spec).decode(), created_at=now
                    )
                )
        except IntegrityError:
            raise Conflict(f"prompt template {name!r} already has a version {version!r}") from None
        return StoredTemplate(name, version, spec, now)

    async def delete(self, name: str, version: str | None = None) -> int:
        """Delete one version, or every version of `name`; how many rows went."""
        where = prompt_templates.c.name == name
        if version is not None:
            where = sa.and_(where, prompt_templates.c.version == version)
        async with self._engine.begin() as conn:
            deleted = (await conn.execute(prompt_templates.delete().where(where))).rowcount
            if deleted:
                await _bump(conn)
        return int(deleted)
