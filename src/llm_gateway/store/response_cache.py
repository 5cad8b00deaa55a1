"""Where cached answers live: a bounded in-memory LRU with TTLs, or Redis (shared).

Both store opaque bytes under a digest (services/cache.py builds both), so no prompt, key
or secret is ever a cache key, and an entry holds only the answer the client was sent.
Redis failures never fail a request: a lookup that cannot reach Redis is a miss and a
store that cannot is skipped (both logged).
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Protocol

import redis.asyncio as aioredis
from redis.exceptions import RedisError

log = logging.getLogger("llm_gateway.cache")

Clock = Callable[[], float]


class CacheStore(Protocol):
    async def get(self, key: str) -> bytes | None: ...

    async def put(self, key: str, value: bytes, ttl: float) -> None: ...

    async def aclose(self) -> None: ...


class MemoryCache:
    """At most `max_entries` entries; the least recently used goes first, expired ones on read."""

    def __init__(self, max_entries: int, clock: Clock = time.monotonic) -> None:
        self._max = max_entries
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    async def get(self, key: str) -> bytes | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires, value = entry
        if expires <= self._clock():
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return value

    async def put(self, key: str, value: bytes, ttl: float) -> None:
        self._entries[key] = (self._clock() + ttl, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)

    async def aclose(self) -> None:
        self._entries.clear()


class RedisCache:
    """Entries as Redis strings with a millisecond expiry, under `{prefix}cache:`."""

    def __init__(self, url: str, prefix: str) -> None:
        self._redis = aioredis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
        self._prefix = f"{prefix}cache:"

    async def get(self, key: str) -> bytes | None:
        try:
            value = await self._redis.get(self._prefix + key)
        except (RedisError, OSError) as exc:
            log.warning("response cache: Redis unreachable (%s), answering from upstream", exc)
            return None
        return value if isinstance(value, bytes) else None

    async def put(self, key: str, value: bytes, ttl: float) -> None:
        try:
            await self._redis.set(self._prefix + key, value, px=max(1, int(ttl * 1000)))
        except (RedisError, OSError) as exc:
            log.warning("response cache: Redis unreachable (%s), answer not stored", exc)

    async def aclose(self) -> None:
        await self._redis.aclose()
