"""The native upstream client: HTTP/1.1 on asyncio protocols (http1.py) over per-origin
keep-alive pools (pool.py), behind `transport.HttpClient` (`server.upstream_client: native`).

It sends a request and returns the `http1.Response` once its head has arrived; the caller
reads the body and then releases it (`Response.release`). Timeouts mean what the aiohttp
client's settings meant: a plain answer must be complete `timeout` seconds after the request
began, connecting included; a stream may take as long as it likes but never fall silent for
`timeout` seconds, first byte included; connecting (with the wait for a free connection) gets
at most `connect_timeout` of either. A reused connection always costs no timer but the one
`loop.call_at` handle of its exchange.

Nothing is retried here (routing retries), with one exception: a request on a *reused*
connection that fails before any byte of its answer arrived is sent once more on a fresh
connection, because that is how an upstream closing an idle keep-alive connection looks.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Mapping
from typing import NamedTuple
from urllib.parse import urlsplit

from llm_gateway.core.config import ProviderSettings
from llm_gateway.providers.http1 import Connection, Response, request_head
from llm_gateway.providers.pool import Origin, Pool
from llm_gateway.providers.proxy import Proxies

BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
MAX_ROUTES = 1024
"""Parsed URLs kept; providers use a handful, so the cache is simply dropped when full."""


class Route(NamedTuple):
    """How a URL is sent: on which pool, with which request target and `host` header."""

    pool: Pool
    target: str
    host: str


class NativeClient:
    """One provider's pools, one per origin, and its one `SSLContext` (made at first use)."""

    def __init__(self, settings: ProviderSettings, proxies: Proxies | None = None) -> None:
        self._settings = settings
        self._proxies = Proxies() if proxies is None else proxies
        self._tls: ssl.SSLContext | None = None
        self._pools: dict[Origin, Pool] = {}
        self._routes: dict[str, Route] = {}

    async def send(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: bytes | None,
        timeout: float | None,
        stream: bool,
    ) -> Response:
        """Send a request; the response once its head arrived (raises TimeoutError,
        ConnectionError or another OSError, http1.ProtocolError, or ValueError)."""
        route = self._routes.get(url) or self._route(url)
        length = len(body) if body is not None else 0 if method in BODY_METHODS else None
        head = request_head(method, route.target, route.host, headers, length)
        seconds = timeout or self._settings.timeout
        start = asyncio.get_running_loop().time()
        deadline = start + seconds
        connect_by = start + min(self._settings.connect_timeout, seconds)
        silence = seconds if stream else 0.0
        pool = route.pool
        connection = pool.take() or await _connect(pool, connect_by)
        try:
            return await _exchange(connection, head, body, deadline, silence)
        except ConnectionError:
            if connection.exchanges == 1 or connection.received:
                raise
        # The upstream closed an idle keep-alive connection as this request went out.
        connection = await _connect(pool, connect_by)
        return await _exchange(connection, head, body, deadline, silence)

    def _route(self, url: str) -> Route:
        parts = urlsplit(url)
        host = parts.hostname
        if parts.scheme not in ("http", "https") or not host:
            raise ValueError("not an http(s) URL")
        https = parts.scheme == "https"
        default = 443 if https else 80
        port = parts.port or default
        proxy = self._proxies.for_origin(parts.scheme, host)
        origin = Origin(host, port, self._context() if https else None, proxy)
        pool = self._pools.get(origin)
        if pool is None:
            pool = self._pools[origin] = Pool(origin, self._settings.max_connections)
        netloc = f"[{host}]" if ":" in host else host
        if port != default:
            netloc = f"{netloc}:{port}"
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        if proxy is not None and not https:
            target = f"http://{netloc}{target}"
        route = Route(pool, target, netloc)
        if len(self._routes) >= MAX_ROUTES:
            self._routes.clear()
        self._routes[url] = route
        return route

    def _context(self) -> ssl.SSLContext:
        """Verification and SNI as `ssl.create_default_context()` gives them, which honours
        `SSL_CERT_FILE` / `SSL_CERT_DIR` as the aiohttp client did."""
        if self._tls is None:
            self._tls = ssl.create_default_context()
        return self._tls

    def close(self) -> None:
        for pool in self._pools.values():
            pool.close()
        self._pools.clear()
        self._routes.clear()


async def _connect(pool: Pool, deadline: float) -> Connection:
    async with asyncio.timeout_at(deadline):
        return await pool.connect()


async def _exchange(
    connection: Connection, head: bytes, body: bytes | None, deadline: float, silence: float
) -> Response:
    response = connection.send(head, body, deadline, silence)
    try:
        await response.head()
    except BaseException:
        connection.finish(False)
        raise
    return response
