"""The in-memory key index: what each secret authenticates as, each 401, and how changes
made elsewhere reach it (a revision check, not a clock)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from llm_gateway.core.context import Principal
from llm_gateway.core.errors import AuthenticationFailed
from llm_gateway.services.keyindex import MISS_RECHECK_SECONDS, KeyIndex
from llm_gateway.store.db import Database
from llm_gateway.store.keys import KeyStore
from llm_gateway.store.teams import TeamStore

NOW = datetime(2030, 6, 1, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = NOW.timestamp()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def stores() -> AsyncIterator[tuple[KeyStore, TeamStore]]:
    db = Database("sqlite:///:memory:")
    await db.migrate()
    try:
        yield KeyStore(db.engine, now=lambda: NOW), TeamStore(db.engine, now=lambda: NOW)
    finally:
        await db.aclose()


def reason(index: KeyIndex, secret: str) -> str:
    with pytest.raises(AuthenticationFailed) as failed:
        index.principal(secret)
    assert secret not in failed.value.message
    return failed.value.message


async def test_a_key_authenticates_as_its_principal_with_key_and_team_scopes(
    stores: tuple[KeyStore, TeamStore],
) -> None:
    keys, teams = stores
    await teams.create("Team One", {"models": ["gpt-*"], "rpm": 100, "budget_usd": Decimal(50)}, "t1")
    key, secret = await keys.create({"name": "app", "team_id": "t1", "rpm": 10, "metadata": {"env": "prod"}})
    index = KeyIndex(keys, teams, clock=Clock())
    await index.load()
    principal = index.principal(secret)
    assert (principal.kind, principal.key_id, principal.name, principal.team_id) == (
        "key",
        key.id,
        "app",
        "t1",
    )
    assert principal.metadata == {"env": "prod"}
    key_scope, team_scope = principal.scopes
    assert (key_scope.kind, key_scope.id, key_scope.limits.rpm, key_scope.models) == ("key", key.id, 10, None)
    assert (team_scope.kind, team_scope.name, team_scope.models) == ("team", "Team One", ("gpt-*",))
    assert team_scope.limits.budget_usd == Decimal(50)
    assert "no such key" in reason(index, secret + "x")


async def test_each_refusal_says_why(stores: tuple[KeyStore, TeamStore]) -> None:
    keys, teams = stores
    clock = Clock()
    index = KeyIndex(keys, teams, clock=clock)
    revoked, revoked_secret = await keys.create({"name": "r"})
    await keys.revoke(revoked.id)
    _blocked, blocked_secret = await keys.create({"name": "b", "blocked": True})
    expiring, expiring_secret = await keys.create({"name": "e", "expires_at": NOW + timedelta(seconds=30)})
    rotated, old_secret = await keys.create({"name": "o"})
    _, new_secret = (await keys.rotate(rotated.id, grace_seconds=60)) or (None, "")
    await index.load()
    assert "revoked" in reason(index, revoked_secret)
    assert "blocked" in reason(index, blocked_secret)
    assert index.principal(expiring_secret).key_id == expiring.id
    assert index.principal(old_secret).key_id == index.principal(new_secret).key_id == rotated.id
    clock.now += 61
    assert "expired" in reason(index, expiring_secret)
    assert "rotated" in reason(index, old_secret)
    assert index.principal(new_secret).key_id == rotated.id


async def test_a_change_made_elsewhere_is_seen_by_refresh(stores: tuple[KeyStore, TeamStore]) -> None:
    keys, teams = stores
    await teams.create("T", {}, "t1")
    key, secret = await keys.create({"name": "app", "team_id": "t1"})
    index = KeyIndex(keys, teams, clock=Clock())
    await index.load()
    assert not await index.refresh()  # nothing changed: no reload
    await keys.update(key.id, {"blocked": True})  # as another instance would, behind our back
    assert index.principal(secret).key_id == key.id  # still the loaded view
    assert await index.refresh()
    assert "blocked" in reason(index, secret)
    await keys.update(key.id, {"blocked": False})
    await teams.update("t1", {"models": ["only-this"]})
    assert await index.refresh()
    assert index.principal(secret).scopes[1].models == ("only-this",)


async def test_a_key_created_elsewhere_works_at_once_and_unknown_ones_are_checked_rarely(
    stores: tuple[KeyStore, TeamStore],
) -> None:
    keys, teams = stores
    index = KeyIndex(keys, teams, clock=Clock())
    await index.load()
    key, secret = await keys.create({"name": "new"})  # through another instance's admin API
    found = index.lookup(secret)
    assert not isinstance(found, Principal)  # unknown here: looked for in the store
    assert (await found).key_id == key.id
    assert index.lookup(secret).key_id == key.id  # type: ignore[union-attr]  # now in memory
    revisions = 0
    counted = keys.revision

    async def counting() -> int | None:
        nonlocal revisions
        revisions += 1
        return await counted()

    keys.revision = counting  # type: ignore[method-assign]
    await asyncio.sleep(MISS_RECHECK_SECONDS)
    lookups = [index.lookup(f"sk-gw-unknown{n}") for n in range(50)]
    pending = [found for found in lookups if not isinstance(found, Principal)]
    outcomes = await asyncio.gather(*pending, return_exceptions=True)
    assert len(outcomes) == 50 and all(isinstance(o, AuthenticationFailed) for o in outcomes)
    assert all("no such key" in o.message for o in outcomes if isinstance(o, AuthenticationFailed))
    assert revisions == 1  # fifty unknown keys at once: one store check between them


async def test_the_timer_reloads_within_its_interval(stores: tuple[KeyStore, TeamStore]) -> None:
    import asyncio

    keys, teams = stores
    key, secret = await keys.create({"name": "app"})
    index = KeyIndex(keys, teams, refresh_seconds=0.05, clock=Clock())
    await index.start()
    try:
        await keys.revoke(key.id)
        for _ in range(100):
            await asyncio.sleep(0.02)
            try:
                index.principal(secret)
            except AuthenticationFailed:
                break
        assert "revoked" in reason(index, secret)
    finally:
        await index.aclose()
