"""The bounded in-memory response store (store/responses.py): LRU, TTL, per-owner."""

from __future__ import annotations

import pytest

from llm_gateway.store.responses import MemoryResponseStore, StoredResponse


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def record(response_id: str, owner: str = "a") -> StoredResponse:
    return StoredResponse(response_id, owner, {"id": response_id}, ({"role": "user", "content": "x"},))


async def test_an_owner_sees_only_its_own() -> None:
    store = MemoryResponseStore()
    await store.put(record("r1", "a"))
    assert await store.get("a", "r1") is not None
    assert await store.get("b", "r1") is None
    assert await store.delete("b", "r1") is False
    assert await store.delete("a", "r1") is True
    assert await store.get("a", "r1") is None


async def test_the_least_recently_used_goes_first() -> None:
    store = MemoryResponseStore(max_entries=2)
    await store.put(record("r1"))
    await store.put(record("r2"))
    assert await store.get("a", "r1") is not None  # r1 is now the most recent
    await store.put(record("r3"))
    assert await store.get("a", "r2") is None
    assert await store.get("a", "r1") is not None and await store.get("a", "r3") is not None
    assert len(store) == 2


async def test_entries_expire_after_their_ttl() -> None:
    clock = Clock()
    store = MemoryResponseStore(ttl=10, clock=clock)
    await store.put(record("r1"))
    clock.now = 9.9
    assert await store.get("a", "r1") is not None
    clock.now = 10.0
    assert await store.get("a", "r1") is None
    assert len(store) == 0


def test_bounds_must_make_sense() -> None:
    with pytest.raises(ValueError):
        MemoryResponseStore(max_entries=0)
    with pytest.raises(ValueError):
        MemoryResponseStore(ttl=0)
