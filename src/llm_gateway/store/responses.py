"""Stored Responses API answers: what `store: true` keeps for `GET /v1/responses/{id}` and
`previous_response_id`, per caller.

`ResponseStore` is the contract (async get, put, delete; each scoped to an owner, so one
caller never sees another's responses; start and aclose for what it runs in the background);
`MemoryResponseStore` is the bounded in-process one, an LRU with a maximum entry count and a
time to live (`responses.store: memory`); store/responses_db.py keeps records in the
gateway's database (the default), so any instance sharing it continues a conversation.
A record holds the whole conversation up to and including its answer (earlier input, this
input, the output items) as references to the same item dicts its predecessor holds, so in
memory a long chain of turns costs pointers, not copies.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from llm_gateway.core.types import JSON

DEFAULT_MAX_ENTRIES = 10_000
DEFAULT_TTL_SECONDS = 3600.0


@dataclass(frozen=True, slots=True)
class StoredResponse:
    id: str
    owner: str
    """Who created it: the caller's key id, or `master` / `open`."""
    response: JSON
    """The Response object as the client got it (what `GET` answers)."""
    conversation: tuple[JSON, ...]
    """Every input item of the chain so far, then this response's output items: what a
    follow-up with `previous_response_id` continues from."""
    deployment: str | None = None
    """The deployment that served it, when that deployment served the Responses API natively."""
    upstream_stored: bool = False
    """True when that upstream stored it too, so it may be referenced there by id."""


class ResponseStore(Protocol):
    async def get(self, owner: str, response_id: str, *, cached: bool = True) -> StoredResponse | None:
        """The record, or None when it is missing, expired, or someone else's. `cached=False`
        asks the authoritative copy (a shared store may keep a local one)."""
        ...

    async def put(self, record: StoredResponse) -> None: ...

    async def delete(self, owner: str, response_id: str) -> bool:
        """Remove the record; False when there was none this owner could see."""
        ...

    async def start(self) -> None: ...

    async def aclose(self) -> None: ...


class MemoryResponseStore:
    """An LRU of at most `max_entries` records, each living `ttl` seconds from its write
    (a read refreshes its place in the LRU, not its age). Process-local: with several gateway
    instances, a follow-up must reach the instance that stored its predecessor."""

    def __init__(
        self,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        ttl: float = DEFAULT_TTL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_entries < 1 or ttl <= 0:
            raise ValueError("a response store needs room for one entry and a positive TTL")
        self.max_entries = max_entries
        self.ttl = ttl
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, StoredResponse]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    async def get(self, owner: str, response_id: str, *, cached: bool = True) -> StoredResponse | None:
        return self.lookup(owner, response_id)

    def lookup(self, owner: str, response_id: str) -> StoredResponse | None:
        """`get` without the coroutine: what a caller on the loop can use synchronously."""
        entry = self._entries.get(response_id)
        if entry is None:
            return None
        expires, record = entry
        if expires <= self._clock():
            del self._entries[response_id]
            return None
        if record.owner != owner:
            return None
        self._entries.move_to_end(response_id)
        return record

    async def put(self, record: StoredResponse) -> None:
        self.keep(record)

    def keep(self, record: StoredResponse) -> None:
        self._entries[record.id] = (self._clock() + self.ttl, record)
        self._entries.move_to_end(record.id)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    async def delete(self, owner: str, response_id: str) -> bool:
        return self.drop(owner, response_id)

    def drop(self, owner: str, response_id: str) -> bool:
        if self.lookup(owner, response_id) is None:
            return False
        del self._entries[response_id]
        return True

    async def start(self) -> None:
        return None

    async def aclose(self) -> None:
        return None
