"""Teams: a name, allowed models and limits that bind all of a team's keys together."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from llm_gateway.core.errors import Conflict
from llm_gateway.store.hashing import new_id
from llm_gateway.store.records import (
    TEAM_FIELDS,
    Page,
    TeamRecord,
    decode_cursor,
    encode_cursor,
    grant_values,
    team_of,
)
from llm_gateway.store.tables import keys, revisions, teams

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


async def bump_revision(conn: AsyncConnection) -> None:
    """Count one more write to keys or teams, inside the write's own transaction."""
    await conn.execute(
        revisions.update().where(revisions.c.name == "keys").values(value=revisions.c.value + 1)
    )


async def revision(conn: AsyncConnection) -> int:
    value = await conn.scalar(sa.select(revisions.c.value).where(revisions.c.name == "keys"))
    return int(value or 0)


class TeamStore:
    def __init__(self, engine: AsyncEngine, now: Clock = utcnow) -> None:
        self._engine = engine
        self._now = now

    async def create(self, name: str, values: Mapping[str, Any], team_id: str | None = None) -> TeamRecord:
        now = self._now()
        row = {
            "id": team_id or new_id("team"),
            "name": name,
            "metadata": {},
            **grant_values(values),
            **{name: values[name] for name in TEAM_FIELDS if name in values},
            "created_at": now,
            "updated_at": now,
        }
        try:
            async with self._engine.begin() as conn:
                await conn.execute(teams.insert().values(**row))
                await bump_revision(conn)
        except IntegrityError:
            raise Conflict(f"a team with that id or name already exists ({name!r})") from None
        team = await self.get(row["id"])
        assert team is not None
        return team

    async def get(self, team_id: str) -> TeamRecord | None:
        async with self._engine.connect() as conn:
            row = (await conn.execute(teams.select().where(teams.c.id == team_id))).mappings().first()
        return team_of(row) if row is not None else None

    async def page(self, limit: int, cursor: str | None = None, name: str | None = None) -> Page[TeamRecord]:
        query = teams.select().order_by(teams.c.id).limit(limit + 1)
        after = decode_cursor(cursor)
        if after is not None:
            query = query.where(teams.c.id > after)
        if name:
            query = query.where(sa.func.lower(teams.c.name).contains(name.lower(), autoescape=True))
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        items = [team_of(row) for row in rows[:limit]]
        more = len(rows) > limit
        return Page(items, encode_cursor(items[-1].id) if more and items else None)

    async def all(self) -> list[TeamRecord]:
        async with self._engine.connect() as conn:
            rows = (await conn.execute(teams.select())).mappings().all()
        return [team_of(row) for row in rows]

    async def update(self, team_id: str, values: Mapping[str, Any]) -> TeamRecord | None:
        changes = grant_values(values)
        changes.update((name, values[name]) for name in TEAM_FIELDS if name in values)
        if "name" in values:
            changes["name"] = values["name"]
        changes["updated_at"] = self._now()
        try:
            async with self._engine.begin() as conn:
                result = await conn.execute(teams.update().where(teams.c.id == team_id).values(**changes))
                await bump_revision(conn)
        except IntegrityError:
            raise Conflict(f"a team named {values.get('name')!r} already exists") from None
        return await self.get(team_id) if result.rowcount else None

    async def delete(self, team_id: str) -> bool:
        """Delete a team that has no live keys (409 otherwise); its revoked keys are detached."""
        async with self._engine.begin() as conn:
            live = await conn.scalar(
                sa.select(sa.func.count())
                .select_from(keys)
                .where(keys.c.team_id == team_id, keys.c.revoked_at.is_(None))
            )
            if live:
                raise Conflict(f"team {team_id!r} still has {live} key(s): revoke or move them first")
            await conn.execute(
                keys.update().where(keys.c.team_id == team_id).values(team_id=None, updated_at=self._now())
            )
            result = await conn.execute(teams.delete().where(teams.c.id == team_id))
            await bump_revision(conn)
        return bool(result.rowcount)
