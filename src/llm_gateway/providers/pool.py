"""Keep-alive connections to one upstream origin, for the native client.

A pool holds at most `limit` connections (the provider's `max_connections`); a request past
it waits for one to come back, within its connect timeout. Idle connections are a LIFO list,
so the warmest socket serves next and the coldest ones age out: any idle longer than
`keepalive` seconds is closed, by one timer per pool (never one per request). A connection
comes back only when its exchange ended with the answer read to its end off the socket (see
`http1.Response.release`); a socket the upstream closes while idle leaves the pool by itself.

Opening a connection resolves the name (the loop's resolver), wraps it in TLS
with the client's one `SSLContext` (SNI and verification as `ssl.create_default_context`
does them), and goes through the environment's proxy when there is one (proxy.py).
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from typing import NamedTuple

from llm_gateway.providers.http1 import Connection
from llm_gateway.providers.proxy import Proxy, tunnel

KEEPALIVE = 30.0
"""Seconds an idle connection is kept (as the aiohttp client kept them)."""


class Origin(NamedTuple):
    """Where connections go: the upstream's host and port, with TLS or not, maybe via a proxy."""

    host: str
    port: int
    tls: ssl.SSLContext | None
    proxy: Proxy | None

    async def open(self, connection: Connection) -> None:
        loop = connection.loop
        if self.proxy is None:
            await loop.create_connection(
                lambda: connection,
                self.host,
                self.port,
                ssl=self.tls,
                server_hostname=self.host if self.tls is not None else None,
            )
        elif self.tls is None:
            await loop.create_connection(lambda: connection, self.proxy.host, self.proxy.port)
        else:
            raw = await tunnel(loop, self.proxy, self.host, self.port)
            try:
                secured = await loop.start_tls(raw, connection, self.tls, server_hostname=self.host)
            except BaseException:
                raw.close()
                raise
            assert secured is not None
            connection.connection_made(secured)


class Pool:
    """Up to `limit` keep-alive connections to one origin."""

    def __init__(self, origin: Origin, limit: int, keepalive: float = KEEPALIVE) -> None:
        self.origin = origin
        self._limit = limit
        self._keepalive = keepalive
        self._idle: list[Connection] = []
        self._open = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._sweep: asyncio.TimerHandle | None = None
        self._closed = False

    def take(self) -> Connection | None:
        """The warmest idle connection, or None; never waits."""
        idle = self._idle
        while idle:
            connection = idle.pop()
            if connection.usable:
                return connection
        return None

    async def connect(self) -> Connection:
        """A connection for a request that found none idle: a new one when under the limit,
        else the first to come back. The caller bounds the wait (its connect timeout)."""
        loop = asyncio.get_running_loop()
        while self._open >= self._limit:
            waiter = loop.create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            except BaseException:
                if waiter.done() and not waiter.cancelled():
                    self._wake()  # woken as it gave up: pass the turn on
                raise
            if (connection := self.take()) is not None:
                return connection
        self._open += 1
        connection = Connection(loop, self._finished, self._lost)
        try:
            await self.origin.open(connection)
        except BaseException:
            connection.close()
            self._open -= 1
            self._wake()
            raise
        connection.pooled = True  # from now on, `_lost` gives its place back
        return connection

    def _finished(self, connection: Connection, reusable: bool) -> None:
        if not reusable:
            return  # closing: `_lost` frees its place
        if self._closed:
            connection.close()
            return
        connection.idle_since = connection.loop.time()
        self._idle.append(connection)
        if self._sweep is None:
            self._sweep = connection.loop.call_at(connection.idle_since + self._keepalive, self._expire)
        self._wake()

    def _lost(self, connection: Connection) -> None:
        if not connection.pooled:
            return  # lost while opening: `connect` gave its place back
        self._open -= 1
        if connection in self._idle:
            self._idle.remove(connection)
        self._wake()

    def _wake(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def _expire(self) -> None:
        """Close the connections idle for longer than `keepalive` (the front of the list)."""
        self._sweep = None
        if not self._idle:
            return
        loop = self._idle[0].loop
        cutoff = loop.time() - self._keepalive
        stale = 0
        while stale < len(self._idle) and self._idle[stale].idle_since <= cutoff:
            stale += 1
        expired, self._idle[:stale] = self._idle[:stale], []
        for connection in expired:
            connection.close()
        if self._idle:
            self._sweep = loop.call_at(self._idle[0].idle_since + self._keepalive, self._expire)

    def close(self) -> None:
        """Close the idle connections; busy ones close when their exchange ends."""
        self._closed = True
        if self._sweep is not None:
            self._sweep.cancel()
            self._sweep = None
        idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()
