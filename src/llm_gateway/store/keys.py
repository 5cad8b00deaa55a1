"""Virtual keys: created with a secret shown once, stored as its hash, revoked softly.

Rotation gives a key a new secret and keeps the old one's hash until `previous_until`
(the grace period), so clients can move over without an outage. Revocation keeps the row
(its id stays in spend records and the 401 can say "revoked").
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from llm_gateway.core.errors import Conflict, InvalidRequest
from llm_gateway.store.hashing import hash_secret, key_hint, new_id, new_secret
from llm_gateway.store.records import KeyRecord, Page, decode_cursor, encode_cursor, grant_values, key_of
from llm_gateway.store.tables import keys, teams
from llm_gateway.store.teams import Clock, bump_revision, revision, utcnow

KEY_FIELDS = ("name", "team_id", "expires_at", "blocked")
"""What a key has besides its grants that the admin API may set."""


class KeyStore:
    def __init__(self, engine: AsyncEngine, now: Clock = utcnow) -> None:
        self._engine = engine
        self._now = now

    async def create(self, values: Mapping[str, Any]) -> tuple[KeyRecord, str]:
        """A new key and its secret: the only time the secret exists outside the caller."""
        secret = new_secret()
        now = self._now()
        row = {
            "id": new_id("key"),
            "secret_hash": hash_secret(secret),
            "key_hint": key_hint(secret),
            "metadata": {},
            "blocked": False,
            **{name: values[name] for name in KEY_FIELDS if name in values},
            **grant_values(values),
            "created_at": now,
            "updated_at": now,
        }
        try:
            async with self._engine.begin() as conn:
                await self._check_team(conn, row.get("team_id"))
                await conn.execute(keys.insert().values(**row))
                await bump_revision(conn)
        except IntegrityError:  # the team was deleted between the check and the insert
            raise InvalidRequest(f"team_id: no team {row.get('team_id')!r}", param="team_id") from None
        record = await self.get(row["id"])
        assert record is not None
        return record, secret

    async def get(self, key_id: str) -> KeyRecord | None:
        async with self._engine.connect() as conn:
            row = (await conn.execute(keys.select().where(keys.c.id == key_id))).mappings().first()
        return key_of(row) if row is not None else None

    async def page(
        self,
        limit: int,
        cursor: str | None = None,
        name: str | None = None,
        team_id: str | None = None,
        include_revoked: bool = True,
    ) -> Page[KeyRecord]:
        query = keys.select().order_by(keys.c.id).limit(limit + 1)
        after = decode_cursor(cursor)
        if after is not None:
            query = query.where(keys.c.id > after)
        if name:
            query = query.where(sa.func.lower(keys.c.name).contains(name.lower(), autoescape=True))
        if team_id is not None:
            query = query.where(keys.c.team_id == team_id)
        if not include_revoked:
            query = query.where(keys.c.revoked_at.is_(None))
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        items = [key_of(row) for row in rows[:limit]]
        return Page(items, encode_cursor(items[-1].id) if len(rows) > limit and items else None)

    async def all(self) -> list[KeyRecord]:
        async with self._engine.connect() as conn:
            rows = (await conn.execute(keys.select())).mappings().all()
        return [key_of(row) for row in rows]

    async def count_live(self) -> int:
        """Keys not revoked (what makes a master key mandatory)."""
        async with self._engine.connect() as conn:
            count = await conn.scalar(
                sa.select(sa.func.count()).select_from(keys).where(keys.c.revoked_at.is_(None))
            )
        return int(count or 0)

    async def revision(self) -> int:
        """Grows with every write to keys or teams: what a refresh compares."""
        async with self._engine.connect() as conn:
            return await revision(conn)

    async def snapshot(self) -> tuple[int, list[KeyRecord]]:
        """Every key and the revision they are at, read together."""
        async with self._engine.begin() as conn:
            current = await revision(conn)
            rows = (await conn.execute(keys.select())).mappings().all()
        return current, [key_of(row) for row in rows]

    async def update(self, key_id: str, values: Mapping[str, Any]) -> KeyRecord | None:
        changes = {name: values[name] for name in KEY_FIELDS if name in values}
        changes.update(grant_values(values))
        changes["updated_at"] = self._now()
        async with self._engine.begin() as conn:
            if "team_id" in changes:
                await self._check_team(conn, changes["team_id"])
            current = await conn.scalar(sa.select(keys.c.revoked_at).where(keys.c.id == key_id))
            if current is not None:
                raise Conflict(f"key {key_id!r} is revoked and can no longer change")
            result = await conn.execute(keys.update().where(keys.c.id == key_id).values(**changes))
            await bump_revision(conn)
        return await self.get(key_id) if result.rowcount else None

    async def revoke(self, key_id: str) -> KeyRecord | None:
        """Revoke for good (idempotent: revoking twice keeps the first time)."""
        now = self._now()
        async with self._engine.begin() as conn:
            await conn.execute(
                keys.update()
                .where(keys.c.id == key_id, keys.c.revoked_at.is_(None))
                .values(revoked_at=now, updated_at=now)
            )
            await bump_revision(conn)
        return await self.get(key_id)

    async def rotate(self, key_id: str, grace_seconds: int = 0) -> tuple[KeyRecord, str] | None:
        """A new secret for the key; the old one keeps working for `grace_seconds`."""
        secret = new_secret()
        now = self._now()
        async with self._engine.begin() as conn:
            row = (
                await conn.execute(
                    sa.select(keys.c.secret_hash, keys.c.revoked_at).where(keys.c.id == key_id)
                )
            ).first()
            if row is None:
                return None
            if row.revoked_at is not None:
                raise Conflict(f"key {key_id!r} is revoked and cannot be rotated")
            # The old hash is kept even without grace, so a 401 can say the secret was rotated.
            grace = now + timedelta(seconds=grace_seconds)
            await conn.execute(
                keys.update()
                .where(keys.c.id == key_id)
                .values(
                    secret_hash=hash_secret(secret),
                    key_hint=key_hint(secret),
                    previous_hash=row.secret_hash,
                    previous_until=grace,
                    rotated_at=now,
                    updated_at=now,
                )
            )
            await bump_revision(conn)
        record = await self.get(key_id)
        assert record is not None
        return record, secret

    @staticmethod
    async def _check_team(conn: Any, team_id: str | None) -> None:
        if team_id is None:
            return
        if await conn.scalar(sa.select(teams.c.id).where(teams.c.id == team_id)) is None:
            raise InvalidRequest(f"team_id: no team {team_id!r}", param="team_id")
