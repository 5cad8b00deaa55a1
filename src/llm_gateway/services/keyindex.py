"""Virtual keys in memory: the hot path's lookup, and how it stays current.

Every key (revoked, blocked and expired ones too, so a 401 can say which) is indexed by
its secret's hash, with the `Principal` it authenticates as built once at load. A request
costs one SHA-256 and one dict lookup, never a database round trip (except a secret the
index does not know, which `lookup` looks for once more in the store, at most once per
quarter second for all of them).

The index is rebuilt whole from the store and swapped in one assignment, so a reader
sees the old index or the new one, never a mix. It is rebuilt after a write through this
instance's admin API, when another instance announces one (Redis, `store/changes.py`),
and when the store's revision (a counter every write bumps) has moved, checked every
`refresh_seconds`: so a change reaches every instance within that bound even without
Redis, for SQLite workers as well. If the store cannot be read, the last index stays in
use and the failure is logged.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from llm_gateway.core.context import Principal, Scope
from llm_gateway.core.errors import AuthenticationFailed
from llm_gateway.core.types import JSON
from llm_gateway.store.hashing import hash_secret, same_hash
from llm_gateway.store.keys import KeyStore
from llm_gateway.store.records import KeyRecord, TeamRecord
from llm_gateway.store.teams import TeamStore

log = logging.getLogger("llm_gateway.keys")

MISS_RECHECK_SECONDS = 0.25
"""How often at most an unknown secret makes the index look in the store again."""

Clock = Callable[[], float]
"""Wall-clock seconds (`time.time`): expiry and grace periods are calendar times."""


@dataclass(frozen=True, slots=True)
class Entry:
    """One secret's hash and what it stands for."""

    hash: str
    key_id: str
    principal: Principal
    revoked: bool
    blocked: bool
    expires_at: float | None
    valid_until: float | None = None
    """For a rotated key's old secret: the end of its grace period."""
    rotated: bool = False


def principal_of(key: KeyRecord, team: TeamRecord | None) -> Principal:
    """The caller a key authenticates as, with its own scope and its team's."""
    scopes = [
        Scope(
            "key",
            key.id,
            key.name,
            key.grants.limits,
            key.grants.models,
            attached_guardrails(key.grants.metadata),
            metadata=key.grants.metadata,
        )
    ]
    if team is not None:
        scopes.append(team_scope(team))
    return Principal(
        "key",
        key_id=key.id,
        name=key.name,
        team_id=key.team_id,
        metadata=dict(key.grants.metadata),
        scopes=tuple(scopes),
    )


def team_scope(team: TeamRecord) -> Scope:
    return Scope(
        "team",
        team.id,
        team.name,
        team.grants.limits,
        team.grants.models,
        attached_guardrails(team.grants.metadata),
        metadata=team.grants.metadata,
        end_users=team.end_user_limits,
    )


def attached_guardrails(metadata: JSON) -> tuple[str, ...]:
    """`metadata.guardrails`: the names of the guardrails a key's or team's requests run."""
    names = metadata.get("guardrails")
    return tuple(str(name) for name in names) if isinstance(names, list) else ()


def fingerprint_of(secret_hash: str) -> str:
    """A short digest of a secret's stored hash: enough to tell which secret a session
    used, too little to stand in for it anywhere."""
    return secret_hash[:16]


def index_of(keys: list[KeyRecord], teams: list[TeamRecord]) -> dict[str, Entry]:
    by_team = {team.id: team for team in teams}
    index: dict[str, Entry] = {}
    for key in keys:
        principal = principal_of(key, by_team.get(key.team_id) if key.team_id else None)
        expires = key.expires_at.timestamp() if key.expires_at else None
        common = (key.id, principal, key.revoked_at is not None, key.blocked, expires)
        index[key.secret_hash] = Entry(key.secret_hash, *common)
        if key.previous_hash is not None and key.previous_until is not None:
            until = key.previous_until.timestamp()
            index[key.previous_hash] = Entry(key.previous_hash, *common, valid_until=until, rotated=True)
    return index


class KeyIndex:
    def __init__(
        self, keys: KeyStore, teams: TeamStore, refresh_seconds: float = 2.0, clock: Clock = time.time
    ) -> None:
        self._keys = keys
        self._teams = teams
        self._refresh_seconds = refresh_seconds
        self._clock = clock
        self._entries: dict[str, Entry] = {}
        self._by_id: dict[str, tuple[Entry, ...]] = {}
        self._teams_by_name: dict[str, Scope] = {}
        self._revision: int | None = None
        self._timer: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._rechecking = asyncio.Lock()
        self._rechecked = -MISS_RECHECK_SECONDS
        """When an unknown secret last made this index check the store (`lookup`)."""
        self.hits = 0
        self.misses = 0
        """Lookups that found a key (revoked and expired ones too) and that found none (metrics)."""

    def __len__(self) -> int:
        return len(self._entries)

    def principal(self, secret: str) -> Principal:
        """The principal `secret` authenticates as; a 401 saying why when it does not."""
        return self._known(hash_secret(secret))

    def _known(self, digest: str) -> Principal:
        entry = self._entries.get(digest)
        if entry is None or not same_hash(entry.hash, digest):
            self.misses += 1
            raise AuthenticationFailed("invalid API key: no such key")
        self.hits += 1
        return self._usable(entry)

    def lookup(self, secret: str) -> Principal | Awaitable[Principal]:
        """`principal`, except that a secret this instance does not know is looked for in the
        store once more before it is refused (`await` what is not a `Principal`): a key just
        created through another instance works here at once, before the change announcement
        or the next refresh arrives. Those store checks are coalesced and at most one per
        `MISS_RECHECK_SECONDS`, so a flood of invalid keys cannot load the database."""
        digest = hash_secret(secret)
        entry = self._entries.get(digest)
        if entry is None or not same_hash(entry.hash, digest):
            return self._recheck(digest)
        self.hits += 1
        return self._usable(entry)

    async def _recheck(self, digest: str) -> Principal:
        if time.monotonic() - self._rechecked >= MISS_RECHECK_SECONDS:
            async with self._rechecking:
                if time.monotonic() - self._rechecked >= MISS_RECHECK_SECONDS:
                    try:
                        await self.refresh()
                    except Exception as exc:
                        log.warning("could not look up an unknown key in the store: %s", exc)
                    self._rechecked = time.monotonic()
        return self._known(digest)

    def session(self, key_id: str, fingerprint: str) -> Principal:
        """For a signed-in UI session: the key's principal while the secret it signed in with
        (`fingerprint(entry.hash)`) is still one of the key's usable secrets. So revoking,
        blocking, expiring or rotating the key (once a grace period ends) ends the session."""
        for entry in self._by_id.get(key_id, ()):
            if hmac.compare_digest(fingerprint_of(entry.hash), fingerprint):
                return self._usable(entry)
        raise AuthenticationFailed("the key this session signed in with is no longer valid")

    def fingerprint(self, secret: str) -> str:
        """What a session keeps of the secret it signed in with (never the secret itself)."""
        return fingerprint_of(hash_secret(secret))

    def _usable(self, entry: Entry) -> Principal:
        if entry.revoked:
            raise AuthenticationFailed(f"API key {entry.key_id} was revoked", code="key_revoked")
        if entry.blocked:
            raise AuthenticationFailed(f"API key {entry.key_id} is blocked", code="key_blocked")
        now = self._clock()
        if entry.expires_at is not None and entry.expires_at <= now:
            raise AuthenticationFailed(f"API key {entry.key_id} has expired", code="key_expired")
        if entry.valid_until is not None and entry.valid_until <= now:
            raise AuthenticationFailed(
                f"API key {entry.key_id} was rotated: this secret is no longer valid", code="key_rotated"
            )
        return entry.principal

    def team(self, name: str) -> Scope | None:
        """A team's scope by its name (or its id), as a JWT's team claim names it."""
        return self._teams_by_name.get(name)

    async def load(self) -> None:
        """Rebuild the index from the store now (a write here, or a change announced)."""
        async with self._lock:
            revision, keys = await self._keys.snapshot()
            teams = await self._teams.all()
            entries = index_of(keys, teams)
            by_id: dict[str, tuple[Entry, ...]] = {}
            for entry in entries.values():
                by_id[entry.key_id] = (*by_id.get(entry.key_id, ()), entry)
            self._entries, self._by_id = entries, by_id
            by_name = {team.id: team_scope(team) for team in teams}
            by_name.update((team.name, team_scope(team)) for team in teams)
            self._teams_by_name = by_name
            self._revision = revision

    async def refresh(self) -> bool:
        """Rebuild if the store changed since the last load; whether it did."""
        if await self._keys.revision() == self._revision:
            return False
        await self.load()
        return True

    async def reload_quietly(self) -> None:
        """`load`, logging instead of raising (for listeners and timers)."""
        try:
            await self.load()
        except Exception as exc:
            log.warning("could not reload virtual keys (keeping the last ones loaded): %s", exc)

    async def start(self) -> None:
        await self.load()
        self._timer = asyncio.get_running_loop().create_task(self._refresh_forever())

    async def _refresh_forever(self) -> None:
        while True:
            await asyncio.sleep(self._refresh_seconds)
            try:
                await self.refresh()
            except Exception as exc:
                log.warning("could not refresh virtual keys (keeping the last ones loaded): %s", exc)

    async def aclose(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            await asyncio.gather(self._timer, return_exceptions=True)
