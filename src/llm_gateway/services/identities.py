"""Keys and teams as the admin API and the runtime use them: the store, the in-memory index
that authenticates requests, and the announcement that keeps other instances current.

Every write goes through here, so none can forget to rebuild this instance's index and
tell the others (`store/changes.py`). Reads go to the stores directly.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol

from llm_gateway.core.context import Scope
from llm_gateway.services.keyindex import KeyIndex
from llm_gateway.store.db import Database
from llm_gateway.store.keys import KeyStore
from llm_gateway.store.records import KeyRecord, TeamRecord
from llm_gateway.store.teams import TeamStore

if TYPE_CHECKING:
    from llm_gateway.store.changes import KeyChanges

log = logging.getLogger("llm_gateway.keys")


class MasterKeyRequired(RuntimeError):
    """The database holds live virtual keys and no master key is configured: starting would
    open the gateway to anyone, so it refuses."""


class SpendView(Protocol):
    """What a scope has spent in its current budget period (the governance hook's counters)."""

    async def spent_usd(self, scope: Scope) -> Decimal | None: ...


class Identities:
    def __init__(self, database: Database, refresh_seconds: float, changes: KeyChanges | None = None) -> None:
        self.database = database
        self.keys = KeyStore(database.engine)
        self.teams = TeamStore(database.engine)
        self.index = KeyIndex(self.keys, self.teams, refresh_seconds)
        self._changes = changes

    async def start(self, master_key: bool) -> None:
        """Migrate, refuse to start open over live keys, load the index, follow changes."""
        await self.database.migrate()
        if not master_key:
            live = await self.keys.count_live()
            if live:
                message = (
                    f"the database holds {live} virtual key(s) but no master_key is configured: "
                    "set master_key in the config (keys are enforced only with one), or point "
                    "database_url at another database"
                )
                log.error(message)
                raise MasterKeyRequired(message)
        await self.index.start()
        if self._changes is not None:
            await self._changes.start(self.index.reload_quietly)

    async def changed(self) -> None:
        """After a write: rebuild the index here, and tell the other instances."""
        await self.index.load()
        if self._changes is not None:
            await self._changes.publish()

    async def create_key(self, values: Mapping[str, Any]) -> tuple[KeyRecord, str]:
        created = await self.keys.create(values)
        await self.changed()
        return created

    async def update_key(self, key_id: str, values: Mapping[str, Any]) -> KeyRecord | None:
        key = await self.keys.update(key_id, values)
        await self.changed()
        return key

    async def revoke_key(self, key_id: str) -> KeyRecord | None:
        key = await self.keys.revoke(key_id)
        await self.changed()
        return key

    async def rotate_key(self, key_id: str, grace_seconds: int) -> tuple[KeyRecord, str] | None:
        rotated = await self.keys.rotate(key_id, grace_seconds)
        await self.changed()
        return rotated

    async def create_team(self, name: str, values: Mapping[str, Any], team_id: str | None) -> TeamRecord:
        team = await self.teams.create(name, values, team_id)
        await self.changed()
        return team

    async def update_team(self, team_id: str, values: Mapping[str, Any]) -> TeamRecord | None:
        team = await self.teams.update(team_id, values)
        await self.changed()
        return team

    async def delete_team(self, team_id: str) -> bool:
        deleted = await self.teams.delete(team_id)
        await self.changed()
        return deleted

    async def aclose(self) -> None:
        await self.index.aclose()
        if self._changes is not None:
            await self._changes.aclose()
        await self.database.aclose()
