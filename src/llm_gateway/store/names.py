"""Key and team names for the ids a page shows (the UI's usage report), one query per kind.

Usage rows carry ids only; a report over many keys looks their names up in one `IN`
query per batch of ids (never one query per row), revoked keys included, since their
spend stays in the report.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

import sqlalchemy as sa

from llm_gateway.store.db import Database
from llm_gateway.store.tables import keys, teams

BATCH = 500
"""Ids per query: well under SQLite's bound on a statement's parameters."""

Kind = Literal["key", "team"]


async def names_of(database: Database, kind: Kind, ids: Iterable[str]) -> dict[str, str]:
    """`{id: name}` for the ids that exist (unknown ids are left out)."""
    table = keys if kind == "key" else teams
    wanted = sorted(set(ids))
    found: dict[str, str] = {}
    async with database.engine.connect() as conn:
        for start in range(0, len(wanted), BATCH):
            batch = wanted[start : start + BATCH]
            result = await conn.execute(sa.select(table.c.id, table.c.name).where(table.c.id.in_(batch)))
            found.update({row_id: name for row_id, name in result.all()})
    return found
