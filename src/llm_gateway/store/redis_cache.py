"""The response cache in Redis, shared by every instance (`store/response_cache.py` has the
interface and the in-memory store).

Redis failures never fail a request: a lookup that cannot reach Redis is a miss and a
store that cannot is skipped (both logged).
"""

from __future__ import annotations

import logging

import redis.asyncio as aioredis
from redis.exceptions import RedisError

log = logging.getLogger("llm_gateway.cache")


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
