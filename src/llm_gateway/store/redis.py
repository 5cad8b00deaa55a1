"""Open circuits shared between gateway instances through Redis.

Each instance keeps its breakers in memory and decides from them alone, so a request never
waits on Redis. Only a state change travels: when a circuit opens or closes here, one
pipelined write updates a hash (deployment key → open-until, wall-clock seconds) and
publishes the change; every other instance applies it to its own breakers from a pub/sub
listener. A new or reconnecting instance subscribes first, then reads the hash, so it
misses nothing. A half-open probe is claimed with `SET NX PX`, so one instance probes.

Failure counting stays per instance: an instance opens a circuit on what it saw, and the
others follow. If Redis is down the gateway keeps working on local state and says so in
the log; the listener reconnects by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable, Coroutine
from typing import Any

import orjson
import redis.asyncio as aioredis
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

log = logging.getLogger("llm_gateway.redis")

Apply = Callable[[str, float | None], None]
"""(deployment key, open until (wall-clock seconds) or None for closed)."""

RECONNECT_DELAY = 1.0


class SharedBreakers:
    def __init__(self, url: str, prefix: str = "llm-gateway:") -> None:
        self._redis = aioredis.from_url(url, socket_connect_timeout=2, socket_timeout=5)
        self._hash = f"{prefix}breakers"
        self._channel = f"{prefix}breakers:changes"
        self._probes = f"{prefix}breakers:probe:"
        self._id = uuid.uuid4().hex
        self._apply: Apply | None = None
        self._pubsub: PubSub | None = None
        self._listener: asyncio.Task[None] | None = None
        self._writes: set[asyncio.Task[None]] = set()

    async def start(self, apply: Apply) -> None:
        """Load the shared state and follow changes. Never raises: Redis down means local-only."""
        self._apply = apply
        try:
            await self._subscribe()
        except (RedisError, OSError) as exc:
            log.warning("Redis unreachable (%s): circuit breakers are local until it is back", exc)
        self._listener = asyncio.get_running_loop().create_task(self._listen())

    async def _subscribe(self) -> None:
        pubsub = self._redis.pubsub()
        try:
            await pubsub.subscribe(self._channel)
            entries = await self._redis.hgetall(self._hash)
        except BaseException:
            await pubsub.aclose()  # type: ignore[no-untyped-call]  # untyped in redis-py
            raise
        self._pubsub = pubsub
        for key, value in entries.items():
            self._deliver(key.decode() if isinstance(key, bytes) else key, orjson.loads(value))

    async def _listen(self) -> None:
        while True:
            try:
                if self._pubsub is None:
                    await self._subscribe()
                    log.info("Redis reachable again: circuit breakers are shared")
                assert self._pubsub is not None
                message = await self._pubsub.get_message(ignore_subscribe_messages=True, timeout=None)
                if message is not None and message.get("type") == "message":
                    self._receive(message["data"])
            except (RedisError, OSError) as exc:
                if self._pubsub is not None:
                    log.warning("lost Redis (%s): circuit breakers are local until it is back", exc)
                    await self._drop_pubsub()
                await asyncio.sleep(RECONNECT_DELAY)

    def _receive(self, data: bytes) -> None:
        try:
            change = orjson.loads(data)
            if change.get("from") == self._id:
                return
            self._deliver(str(change["key"]), change.get("until"))
        except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
            log.warning("ignored a malformed breaker change on %s", self._channel)

    def _deliver(self, key: str, until: Any) -> None:
        if self._apply is not None:
            self._apply(key, float(until) if isinstance(until, int | float) else None)

    def publish(self, key: str, until: float | None) -> None:
        """Tell the other instances a circuit here opened (until `until`) or closed (None).

        Called from routing on a state change, which must not wait: the write runs as a task.
        """
        self._spawn(self._write(key, until))

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)

    async def _write(self, key: str, until: float | None) -> None:
        change = orjson.dumps({"key": key, "until": until, "from": self._id})
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                if until is None:
                    pipe.hdel(self._hash, key)
                else:
                    pipe.hset(self._hash, key, orjson.dumps(until))
                pipe.delete(self._probes + key)
                pipe.publish(self._channel, change)
                await pipe.execute()
        except (RedisError, OSError) as exc:
            log.warning("could not share a circuit change of %s through Redis: %s", key, exc)

    async def claim_probe(self, key: str, seconds: float) -> bool:
        """Whether this instance may send the half-open probe (True too if Redis is down)."""
        try:
            ttl = max(int(seconds * 1000), 1)
            claimed = await self._redis.set(self._probes + key, self._id, nx=True, px=ttl)
        except (RedisError, OSError):
            return True
        return bool(claimed)

    async def _drop_pubsub(self) -> None:
        pubsub, self._pubsub = self._pubsub, None
        if pubsub is not None:
            with contextlib.suppress(RedisError, OSError):
                await pubsub.aclose()  # type: ignore[no-untyped-call]  # untyped in redis-py

    async def aclose(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            await asyncio.gather(self._listener, return_exceptions=True)
        if self._writes:
            await asyncio.wait(self._writes, timeout=2)
        await self._drop_pubsub()
        await self._redis.aclose()
