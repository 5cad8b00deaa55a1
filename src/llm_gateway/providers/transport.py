"""What every HTTP provider shares: one keep-alive pool, transport-error mapping, SSE parsing.

aiohttp was chosen by measurement (see docs/performance.md): per proxied request it spends
far less CPU than httpx, which dominates a gateway's cost per request.
"""

from __future__ import annotations

import email.utils
import math
import time
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import orjson

from llm_gateway.core.config import ProviderSettings
from llm_gateway.core.errors import (
    ProviderError,
    UpstreamConnectionError,
    UpstreamOverloaded,
    UpstreamRateLimited,
    UpstreamStatusError,
    UpstreamTimeout,
    UpstreamUnavailable,
)


class HttpClient:
    """A provider's pooled HTTP client. The session is opened lazily inside the event loop."""

    def __init__(self, provider: str, settings: ProviderSettings) -> None:
        self.provider = provider
        self._settings = settings
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            limit=self._settings.max_connections, ttl_dns_cache=300, keepalive_timeout=30
        )
        self._session = aiohttp.ClientSession(
            connector=connector, auto_decompress=True, skip_auto_headers=("User-Agent",)
        )
        return self._session

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _timeout(self, timeout: float | None, stream: bool) -> aiohttp.ClientTimeout:
        seconds = timeout or self._settings.timeout
        connect = min(self._settings.connect_timeout, seconds)
        if stream:
            # A long answer may stream for minutes; what must not happen is silence.
            return aiohttp.ClientTimeout(total=None, connect=connect, sock_read=seconds)
        return aiohttp.ClientTimeout(total=seconds, connect=connect)

    @asynccontextmanager
    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        body: bytes | None = None,
        timeout: float | None = None,
        stream: bool = False,
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """Send a request and yield the response; transport failures inside the block become
        ProviderErrors.

        Leaving the block early (a cancelled or abandoned stream) closes the connection
        instead of returning a half-read one to the pool.
        """
        session = self._session or self._open()
        try:
            async with session.request(
                method, url, data=body, headers=headers, timeout=self._timeout(timeout, stream)
            ) as response:
                yield response
        except TimeoutError:
            raise UpstreamTimeout(
                f"upstream provider {self.provider!r} timed out", provider=self.provider
            ) from None
        except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError) as exc:
            raise UpstreamConnectionError(
                f"connection to upstream provider {self.provider!r} failed: {type(exc).__name__}",
                provider=self.provider,
            ) from None


async def sse_events(response: aiohttp.ClientResponse) -> AsyncIterator[tuple[str | None, bytes]]:
    """Parse a Server-Sent Events body into (event name, data) pairs, as the spec frames them."""
    event: str | None = None
    data: list[bytes] = []
    async for raw in response.content:
        line = raw.rstrip(b"\r\n")
        if not line:
            if data:
                yield event, b"\n".join(data)
            event, data = None, []
        elif line.startswith(b"data:"):
            data.append(line[6:] if line[5:6] == b" " else line[5:])
        elif line.startswith(b"event:"):
            event = line[6:].strip().decode()
    if data:
        yield event, b"\n".join(data)


def parse_json_body(body: bytes, provider: str) -> Any:
    """Decode an upstream JSON body; garbage from upstream is the upstream's failure (502)."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        raise UpstreamUnavailable(
            f"upstream provider {provider!r} returned a malformed response", provider=provider
        ) from None


def retry_after_seconds(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Read `retry-after-ms` or `retry-after` (seconds or an HTTP date); garbage is None."""
    value = headers.get("retry-after-ms")
    if value:
        try:
            return _finite_seconds(float(value) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return _finite_seconds(float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None
    return max(0.0, when - (time.time() if now is None else now))


def _finite_seconds(value: float) -> float:
    """`inf` or `nan` from upstream would break every later use of the number."""
    if not math.isfinite(value):
        raise ValueError(value)
    return max(0.0, value)


def error_for_status(
    status: int,
    message: str,
    *,
    provider: str,
    code: str | None = None,
    param: str | None = None,
    retry_after: float | None = None,
) -> ProviderError:
    """The generic mapping of an upstream HTTP status; adapters handle their special codes first."""
    if status == 429:
        return UpstreamRateLimited(
            message, provider=provider, code=code, param=param, retry_after=retry_after
        )
    if status == 529:
        return UpstreamOverloaded(
            f"upstream provider {provider!r} is overloaded: {message}",
            provider=provider,
            retry_after=retry_after,
        )
    if status >= 500:
        return UpstreamUnavailable(
            f"upstream provider {provider!r} failed with HTTP {status}: {message}",
            provider=provider,
            retry_after=retry_after,
        )
    return UpstreamStatusError(message, status=status, provider=provider, code=code, param=param)


def redact(text: str, secrets: Iterable[str | None]) -> str:
    """Remove our own credentials from text an upstream echoes back (error messages)."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "[redacted]")
    return text
