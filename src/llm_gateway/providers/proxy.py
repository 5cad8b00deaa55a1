"""Outbound proxies from the environment, for the native upstream client.

`HTTPS_PROXY`, `HTTP_PROXY` and `NO_PROXY` (either case) are read once, when a client is made,
as curl and most HTTP clients read them: an https origin is reached through an HTTP CONNECT
tunnel to the proxy (TLS then runs end to end, inside it), an http origin by sending the
request to the proxy in absolute form. Credentials in the proxy's URL become a Basic
`proxy-authorization`. Only `http://` proxies are spoken; any other kind is refused when the
client is made, so a misconfiguration stops start-up instead of sending traffic around it.
"""

from __future__ import annotations

import asyncio
import base64
from typing import NamedTuple
from urllib.parse import unquote, urlsplit
from urllib.request import getproxies_environment, proxy_bypass_environment  # type: ignore[attr-defined]

import httptools


class Proxy(NamedTuple):
    host: str
    port: int
    authorization: str | None
    """The `proxy-authorization` value, when the proxy's URL carries credentials."""


class Proxies:
    """Which proxy, if any, serves an origin, as the environment says."""

    def __init__(self, environment: dict[str, str] | None = None) -> None:
        self._environment = getproxies_environment() if environment is None else environment
        self._proxies = {
            scheme: parse_proxy(self._environment[scheme], scheme)
            for scheme in ("http", "https")
            if self._environment.get(scheme)
        }

    def for_origin(self, scheme: str, host: str) -> Proxy | None:
        proxy = self._proxies.get(scheme)
        if proxy is None or proxy_bypass_environment(host, self._environment):
            return None
        return proxy


def parse_proxy(url: str, scheme: str) -> Proxy:
    parts = urlsplit(url if "://" in url else f"http://{url}")
    if parts.scheme != "http" or not parts.hostname:
        raise ValueError(
            f"the {scheme}_proxy environment variable names a proxy the native upstream client cannot "
            f"use ({parts.scheme}://...): only http:// proxies are supported; set "
            "server.upstream_client: aiohttp to ignore proxies, or fix the variable"
        )
    authorization = None
    if parts.username is not None:
        pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        authorization = "Basic " + base64.b64encode(pair.encode()).decode()
    return Proxy(parts.hostname, parts.port or 80, authorization)


async def tunnel(loop: asyncio.AbstractEventLoop, proxy: Proxy, host: str, port: int) -> asyncio.Transport:
    """A connection through `proxy` to `host:port` (HTTP CONNECT); any answer but 2xx is a
    ConnectionError. The caller bounds the time it takes."""
    transport, answer = await loop.create_connection(lambda: _Tunnel(loop), proxy.host, proxy.port)
    target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    auth = f"proxy-authorization: {proxy.authorization}\r\n" if proxy.authorization else ""
    transport.write(f"CONNECT {target} HTTP/1.1\r\nhost: {target}\r\n{auth}\r\n".encode())
    try:
        status = await answer.status
    except BaseException:
        transport.close()
        raise
    if not 200 <= status < 300:
        transport.close()
        raise ConnectionError(f"the proxy refused the tunnel (HTTP {status})")
    return transport


class _Tunnel(asyncio.Protocol):
    """Reads the proxy's answer to CONNECT; after it, the bytes belong to whoever takes over."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.status: asyncio.Future[int] = loop.create_future()
        self._parser = httptools.HttpResponseParser(self)

    def data_received(self, data: bytes) -> None:
        if self.status.done():
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError:
            if not self.status.done():
                self.status.set_exception(ConnectionError("the proxy's answer is not HTTP"))

    def on_headers_complete(self) -> None:
        if not self.status.done():
            self.status.set_result(self._parser.get_status_code())

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.status.done():
            self.status.set_exception(ConnectionError("the proxy closed the connection"))
