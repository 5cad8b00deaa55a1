"""Telling every gateway instance that keys or teams changed, through Redis pub/sub.

The message carries nothing secret, only the sender's id: receivers re-read the store.
Redis being down costs only speed: each instance also re-reads on a timer
(`auth.refresh_seconds`), so a change still lands everywhere within that bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable

import orjson
import redis.asyncio as aioredis
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

log = logging.getLogger("llm_gateway.changes")

RECONNECT_DELAY = 1.0
OnChange = Callable[[], Awaitable[None]]


class KeyChanges:
    def __init__(self, url: str, prefix: str = "llm-gateway:") -> None:
        self._redis = aioredis.from_url(url, socket_connect_timeout=2, socket_timeout=5)
        self._channel = f"{prefix}keys:changes"
        self._id = uuid.uuid4().hex
        self._pubsub: PubSub | None = None
        self._listener: asyncio.Task[None] | None = None

    async def start(self, on_change: OnChange) -> None:
        """Follow changes from other instances; never raises (Redis down: the timer covers)."""
        try:
            await self._subscribe()
        except (RedisError, OSError) as exc:
            log.warning("Redis unreachable (%s): key changes arrive by the refresh timer only", exc)
        self._listener = asyncio.get_running_loop().create_task(self._listen(on_change))

    async def _subscribe(self) -> None:
        pubsub = self._redis.pubsub()
        try:
            await pubsub.subscribe(self._channel)
        except BaseException:
            await pubsub.aclose()  # type: ignore[no-untyped-call]  # untyped in redis-py
            raise
        self._pubsub = pubsub

    async def _listen(self, on_change: OnChange) -> None:
        while True:
            try:
                if self._pubsub is None:
                    await self._subscribe()
                    await on_change()  # whatever was published while we were away
                assert self._pubsub is not None
                message = await self._pubsub.get_message(ignore_subscribe_messages=True, timeout=None)
                if (
                    message is not None
                    and message.get("type") == "message"
                    and self._foreign(message["data"])
                ):
                    await on_change()
            except (RedisError, OSError) as exc:
                if self._pubsub is not None:
                    log.warning("lost Redis (%s): key changes arrive by the refresh timer only", exc)
                    await self._drop()
                await asyncio.sleep(RECONNECT_DELAY)

    def _foreign(self, data: bytes) -> bool:
        try:
            return bool(orjson.loads(data).get("from") != self._id)
        except (orjson.JSONDecodeError, AttributeError):
            return True

    async def publish(self) -> None:
        """Tell the others to re-read; a failure is logged, the timer still covers it."""
        try:
            await self._redis.publish(self._channel, orjson.dumps({"from": self._id}))
        except (RedisError, OSError) as exc:
            log.warning("could not announce a key change through Redis: %s", exc)

    async def _drop(self) -> None:
        pubsub, self._pubsub = self._pubsub, None
        if pubsub is not None:
            with contextlib.suppress(RedisError, OSError):
                await pubsub.aclose()  # type: ignore[no-untyped-call]  # untyped in redis-py

    async def aclose(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            await asyncio.gather(self._listener, return_exceptions=True)
        await self._drop()
        await self._redis.aclose()
