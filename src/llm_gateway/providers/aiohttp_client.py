"""The aiohttp upstream client (`server.upstream_client: aiohttp`), behind `HttpClient`.

In a module of its own so that aiohttp (about 9 MiB and 0.15 s to import) is loaded only by
a gateway configured to use it; the native client (native.py) is the default.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

import aiohttp
from aiohttp.http_exceptions import HttpProcessingError

from llm_gateway.core.config import ProviderSettings
from llm_gateway.providers.http1 import MAX_HEADER_LINE, MAX_HEADERS

CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    aiohttp.ClientConnectionError,
    aiohttp.ClientPayloadError,
)
"""aiohttp's failures that mean the connection failed (mapped to UpstreamConnectionError)."""
PROTOCOL_ERRORS: tuple[type[BaseException], ...] = (aiohttp.ClientError, HttpProcessingError)
"""aiohttp's failures that mean the upstream broke the protocol (mapped to UpstreamMalformed)."""


class AiohttpResponse:
    """An `aiohttp.ClientResponse` seen as an `UpstreamResponse`."""

    __slots__ = ("_raw", "content_length", "headers", "status")

    def __init__(self, raw: aiohttp.ClientResponse) -> None:
        self.status = raw.status
        self.headers: Mapping[str, str] = raw.headers
        self.content_length = raw.content_length
        self._raw = raw

    def chunks(self) -> AsyncIterator[bytes]:
        return self._raw.content.iter_any()


class AiohttpClient:
    """One pooled `aiohttp.ClientSession`, opened lazily inside the event loop."""

    def __init__(self, settings: ProviderSettings) -> None:
        self._settings = settings
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            limit=self._settings.max_connections, ttl_dns_cache=300, keepalive_timeout=30
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            auto_decompress=False,
            headers={"accept-encoding": "identity"},
            skip_auto_headers=("User-Agent",),
            max_line_size=MAX_HEADER_LINE,
            max_field_size=MAX_HEADER_LINE,
            max_headers=MAX_HEADERS,
        )
        return self._session

    def _timeout(self, timeout: float | None, stream: bool) -> aiohttp.ClientTimeout:
        seconds = timeout or self._settings.timeout
        connect = min(self._settings.connect_timeout, seconds)
        if stream:
            # A long answer may stream for minutes; what must not happen is silence.
            return aiohttp.ClientTimeout(total=None, connect=connect, sock_read=seconds)
        return aiohttp.ClientTimeout(total=seconds, connect=connect)

    @asynccontextmanager
    async def send(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: bytes | None,
        timeout: float | None,
        stream: bool,
    ) -> AsyncIterator[AiohttpResponse]:
        session = self._session or self._open()
        async with session.request(
            method,
            url,
            data=body,
            headers=headers,
            timeout=self._timeout(timeout, stream),
            allow_redirects=False,
        ) as raw:
            yield AiohttpResponse(raw)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
