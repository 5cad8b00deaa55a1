"""What every HTTP provider shares: one keep-alive pool, transport-error mapping, SSE parsing.

Two clients sit behind `HttpClient`, chosen by `server.upstream_client`: the native one
(native.py: HTTP/1.1 on asyncio protocols and httptools, about half aiohttp's CPU per
upstream request) and aiohttp (chosen earlier, by measurement, over httpx). Both are seen
through `UpstreamResponse`, and every failure of either is mapped here, once.
See docs/performance.md.
"""

from __future__ import annotations

import asyncio
import email.utils
import math
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, Literal, Protocol
from urllib.parse import urlsplit

import orjson

from llm_gateway.core.config import ProviderSettings
from llm_gateway.core.errors import (
    ProviderError,
    UpstreamConnectionError,
    UpstreamMalformed,
    UpstreamOverloaded,
    UpstreamRateLimited,
    UpstreamResponseTooLarge,
    UpstreamStatusError,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from llm_gateway.providers.http1 import ProtocolError
from llm_gateway.providers.native import NativeClient

if TYPE_CHECKING:
    from llm_gateway.providers.aiohttp_client import AiohttpClient

UpstreamClient = Literal["native", "aiohttp"]


class UpstreamResponse(Protocol):
    """An upstream answer whose head has arrived, as either client gives it: the status,
    headers (looked up by lower-case name), declared length and the body's pieces."""

    @property
    def status(self) -> int: ...

    @property
    def headers(self) -> Mapping[str, str]: ...

    @property
    def content_length(self) -> int | None: ...

    def chunks(self) -> AsyncIterator[bytes]: ...


class HttpClient:
    """A provider's pooled HTTP client. Pools (or aiohttp's session) are made lazily, inside
    the event loop, at the first request.

    It never follows a redirect (a 3xx is the upstream's failure: following one would send
    the prompt, and maybe the key, elsewhere), asks for uncompressed answers and decodes none
    itself (upstream.py bounds what a compressed one may inflate to), and turns every transport
    or protocol failure into a `ProviderError`, so each is retried elsewhere and counted.

    `client` picks the implementation (see the module's docstring); both behave the same,
    the tests run with each (`LLM_GATEWAY_TEST_UPSTREAM_CLIENT`). `propagate(provider,
    headers)`, when given, returns the headers to send in place of a request's own: how
    tracing adds the current `traceparent` to every upstream request, whatever the provider.
    """

    def __init__(
        self,
        provider: str,
        settings: ProviderSettings,
        propagate: Callable[[str, Mapping[str, str]], Mapping[str, str]] | None = None,
        *,
        client: UpstreamClient = "native",
    ) -> None:
        self.provider = provider
        self.client = client
        self._settings = settings
        self._propagate = propagate
        self._native = NativeClient(settings) if client == "native" else None
        self._aiohttp: AiohttpClient | None = None
        self._connection_errors: tuple[type[BaseException], ...] = (OSError,)
        self._protocol_errors: tuple[type[BaseException], ...] = (ValueError, ProtocolError)
        if client == "aiohttp":
            from llm_gateway.providers import aiohttp_client  # loaded only when chosen

            self._aiohttp = aiohttp_client.AiohttpClient(settings)
            self._connection_errors += aiohttp_client.CONNECTION_ERRORS
            self._protocol_errors += aiohttp_client.PROTOCOL_ERRORS
        self.max_response_bytes = settings.max_response_bytes
        self.max_event_bytes = settings.max_event_bytes

    async def aclose(self) -> None:
        if self._native is not None:
            self._native.close()
        if self._aiohttp is not None:
            await self._aiohttp.aclose()

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
    ) -> AsyncIterator[UpstreamResponse]:
        """Send a request and yield the response; transport failures inside the block become
        ProviderErrors, and so does a redirect.

        Leaving the block early (a cancelled or abandoned stream) closes the connection
        instead of returning a half-read one to the pool; so does a cancellation.
        """
        if self._propagate is not None:
            headers = self._propagate(self.provider, headers)
        try:
            if self._native is not None:
                response = await self._native.send(method, url, headers, body, timeout, stream)
                cancelled = False
                try:
                    if 300 <= response.status < 400:
                        raise redirect_error(self.provider, response.status, response.headers.get("location"))
                    yield response
                except asyncio.CancelledError:
                    cancelled = True
                    raise
                finally:
                    response.release(not cancelled)
                return
            assert self._aiohttp is not None
            async with self._aiohttp.send(method, url, headers, body, timeout, stream) as answer:
                if 300 <= answer.status < 400:
                    raise redirect_error(self.provider, answer.status, answer.headers.get("location"))
                yield answer
        except TimeoutError:
            raise UpstreamTimeout(
                f"upstream provider {self.provider!r} timed out", provider=self.provider
            ) from None
        except self._connection_errors as exc:
            raise UpstreamConnectionError(
                f"connection to upstream provider {self.provider!r} failed: {type(exc).__name__}",
                provider=self.provider,
            ) from None
        except self._protocol_errors as exc:
            # A bad status line, header or chunk size, undecodable bytes: the upstream broke
            # the protocol. The exception's text may quote the upstream's bytes, so only its
            # type is named.
            raise malformed(self.provider, f"broke the HTTP protocol ({type(exc).__name__})") from None


def malformed(provider: str, what: str = "returned a malformed response") -> UpstreamMalformed:
    """The 502 for an answer the gateway cannot use: retried elsewhere, counted by the breaker."""
    return UpstreamMalformed(f"upstream provider {provider!r} {what}", provider=provider)


def too_large(provider: str, what: str, limit: int) -> UpstreamResponseTooLarge:
    return UpstreamResponseTooLarge(
        f"upstream provider {provider!r} sent {what} over the limit of {limit} bytes", provider=provider
    )


def redirect_error(provider: str, status: int, location: str | None) -> UpstreamUnavailable:
    """A 3xx is never followed; the message names where it pointed, host only (a URL's path or
    query may carry a secret)."""
    where = ""
    if location:
        try:
            parts = urlsplit(location)
            where = f" to {parts.scheme}://{parts.hostname}" if parts.hostname else " (relative)"
        except ValueError:
            where = ""
    return UpstreamUnavailable(
        f"upstream provider {provider!r} answered HTTP {status}, a redirect{where}; redirects are "
        "not followed",
        provider=provider,
        code="upstream_redirect",
    )


async def sse_events(
    response: UpstreamResponse, *, provider: str = "upstream", limit: int = 1024 * 1024
) -> AsyncIterator[tuple[str | None, bytes]]:
    """Parse a Server-Sent Events body into (event name, data) pairs, as the spec frames them.

    Lines are split here rather than by aiohttp's line reader so an event (its data lines and
    any unfinished line) can be held to `limit` bytes; more is a 502. A line that fits in one
    read is sliced from it, never copied twice.
    """
    event: str | None = None
    data: list[bytes] = []
    size = 0
    parts: list[bytes] = []
    held = 0
    async for chunk in response.chunks():
        start = 0
        while (end := chunk.find(b"\n", start)) >= 0:
            if parts:
                parts.append(chunk[start:end])
                line = b"".join(parts)
                parts.clear()
                held = 0
            else:
                line = chunk[start:end]
            start = end + 1
            if line.endswith(b"\r"):
                line = line[:-1]
            if not line:
                if data:
                    yield event, b"\n".join(data)
                event, data, size = None, [], 0
            elif line.startswith(b"data:"):
                value = line[6:] if line[5:6] == b" " else line[5:]
                data.append(value)
                size += len(value)
                if size > limit:
                    data.clear()  # the kept error's traceback holds this frame
                    raise too_large(provider, "a stream event", limit)
            elif line.startswith(b"event:"):
                event = _event_name(line, provider)
        if start < len(chunk):
            parts.append(chunk[start:] if start else chunk)
            held += len(chunk) - start
        if size + held > limit:
            data.clear()
            parts.clear()
            raise too_large(provider, "a stream event", limit)
    line = b"".join(parts).rstrip(b"\r")
    if line.startswith(b"data:"):
        data.append(line[6:] if line[5:6] == b" " else line[5:])
    if data:
        yield event, b"\n".join(data)


def _event_name(line: bytes, provider: str) -> str:
    try:
        return line[6:].strip().decode()
    except UnicodeDecodeError:
        raise malformed(provider, "sent a stream event whose name is not UTF-8") from None


def parse_json_body(body: bytes, provider: str) -> Any:
    """Decode an upstream JSON body; garbage from upstream is the upstream's failure (502)."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        raise malformed(provider) from None


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
    """Remove our own credentials from text an upstream echoes back (error messages).

    The error mappers use this on the fields they read; `redaction.Secrets` then scrubs the
    raw body before them and every field of the mapped error after."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "[redacted]")
    return text


def body_text(body: bytes, secrets: Iterable[str | None], limit: int = 500) -> str:
    """A non-JSON error body as text for a message: redacted first, then cut to `limit`
    characters (cutting first could leave most of a key straddling the cut)."""
    return redact(body.decode("utf-8", "replace"), secrets)[:limit].strip()
