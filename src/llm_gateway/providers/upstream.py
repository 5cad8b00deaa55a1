"""The exchanges every HTTP provider has with its upstream: POST JSON and parse the answer, or
POST and read a stream of events. Each takes the provider's own error mapper.

This is the one place upstream bodies are read (`read_body`, `body_chunks`, and `sse_events`
below them), so the limits on them live here: an answer is read to at most the provider's
`max_response_bytes` (its Content-Length checked first, then counted as it arrives, after
any decompression), an error body to at most `ERROR_BODY_BYTES`, and each stream event to
`max_event_bytes`. Over a limit is an `UpstreamResponseTooLarge` (502). A stream that stops
before its protocol's terminal event is an `UpstreamConnectionError` from `early_end`,
whichever provider it is.
"""

from __future__ import annotations

import zlib
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any, NamedTuple

from llm_gateway.core.errors import ProviderError, UpstreamConnectionError
from llm_gateway.core.types import JSON
from llm_gateway.providers.transport import (
    HttpClient,
    UpstreamResponse,
    malformed,
    parse_json_body,
    sse_events,
    too_large,
)

ERROR_BODY_BYTES = 64 * 1024
"""How much of an error body is read: enough for any real error, and all an echo may cost."""
WBITS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}

ErrorMapper = Callable[[int, bytes, Mapping[str, str]], ProviderError]
"""A provider's mapping of an error response (status, body, headers) to a gateway error."""

SSE = tuple[str | None, bytes]
"""One Server-Sent Event: its `event` name (None when unnamed) and its `data` bytes."""


class Reply(NamedTuple):
    """A successful JSON answer: the parsed body and the response headers."""

    data: Any
    headers: Mapping[str, str]


async def read_body(response: UpstreamResponse, limit: int, provider: str) -> bytes:
    """The whole body, decoded; over `limit` bytes (declared, received or inflated) is a 502."""
    length = response.content_length
    if length is not None and length > limit:
        raise too_large(provider, "an answer", limit)
    return await _read(response, limit, provider, cut=False)


async def read_error_body(response: UpstreamResponse, provider: str) -> bytes:
    """At most `ERROR_BODY_BYTES` of an error body; the rest is never read (the connection is
    closed rather than pooled)."""
    return await _read(response, ERROR_BODY_BYTES, provider, cut=True)


async def _read(response: UpstreamResponse, limit: int, provider: str, *, cut: bool) -> bytes:
    decoder = _decoder(response, provider)
    parts: list[bytes] = []
    size = 0
    async for chunk in response.chunks():
        if decoder is not None:
            try:
                chunk = decoder.decompress(chunk, limit + 1 - size)
            except zlib.error:
                raise malformed(provider, "sent a body that does not decompress") from None
        size += len(chunk)
        if size > limit or (decoder is not None and decoder.unconsumed_tail):
            if not cut:
                # The error is kept (health tracking stores it) and so is its traceback, with
                # this frame: drop what was read before raising.
                parts.clear()
                chunk, decoder = b"", None
                raise too_large(provider, "an answer", limit)
            parts.append(chunk[: len(chunk) - (size - limit)] if size > limit else chunk)
            break
        parts.append(chunk)
    return b"".join(parts)


def _decoder(response: UpstreamResponse, provider: str) -> Any:
    """A bounded decoder for a compressed body (the gateway asks for none, but may get one)."""
    encoding = response.headers.get("content-encoding", "identity").strip().lower()
    if encoding in ("", "identity"):
        return None
    if encoding not in WBITS:
        raise malformed(provider, f"sent a body in an encoding that was not asked for ({encoding[:32]!r})")
    return zlib.decompressobj(WBITS[encoding])


def body_chunks(response: UpstreamResponse) -> AsyncIterator[bytes]:
    """A streamed body's bytes as they arrive (for binary event streams, which bound each frame)."""
    return response.chunks()


async def raise_for_status(response: UpstreamResponse, error: ErrorMapper, provider: str) -> None:
    """Raise the mapped error when the status is 400 or above."""
    if response.status >= 400:
        raise error(response.status, await read_error_body(response, provider), response.headers)


async def post_json(
    http: HttpClient,
    url: str,
    body: bytes,
    *,
    headers: Mapping[str, str],
    error: ErrorMapper,
    timeout: float | None = None,
) -> Reply:
    """POST `body` (JSON bytes); an error status raises `error(...)`, garbage raises a 502."""
    async with http.request("POST", url, body=body, headers=headers, timeout=timeout) as response:
        await raise_for_status(response, error, http.provider)
        raw = await read_body(response, http.max_response_bytes, http.provider)
        return Reply(parse_json_body(raw, http.provider), response.headers)


def json_object(data: Any, provider: str) -> JSON:
    """`data` when it is a JSON object; any other answer is the upstream's failure (502)."""
    if not isinstance(data, dict):
        raise malformed(provider)
    return data


@asynccontextmanager
async def open_stream(
    http: HttpClient,
    url: str,
    body: bytes,
    *,
    headers: Mapping[str, str],
    error: ErrorMapper,
    timeout: float | None = None,
) -> AsyncIterator[UpstreamResponse]:
    """POST for a streamed answer and yield the response once its status is a success.

    Leaving the block, however it happens, closes the upstream request.
    """
    async with http.request(
        "POST", url, body=body, headers=headers, timeout=timeout, stream=True
    ) as response:
        await raise_for_status(response, error, http.provider)
        if response.headers.get("content-encoding", "identity").strip().lower() not in ("", "identity"):
            raise malformed(http.provider, "sent a compressed stream, which was not asked for")
        yield response


async def sse_stream(
    http: HttpClient,
    url: str,
    body: bytes,
    *,
    headers: Mapping[str, str],
    error: ErrorMapper,
    timeout: float | None = None,
    finished: Callable[[], bool] | None = None,
) -> AsyncGenerator[SSE, None]:
    """POST and yield the answer's Server-Sent Events; an error status raises before the first.

    A consumer stops iterating at its protocol's terminal event and closes this generator
    (`contextlib.aclosing`), which closes the upstream request. Reaching the end of the body
    instead means the upstream stopped early, unless `finished()` says the answer is complete
    (for protocols, like Gemini's, whose stream simply ends).
    """
    async with open_stream(http, url, body, headers=headers, error=error, timeout=timeout) as response:
        async for event in sse_events(response, provider=http.provider, limit=http.max_event_bytes):
            yield event
    if finished is None or not finished():
        raise early_end(http.provider)


def early_end(provider: str) -> UpstreamConnectionError:
    """The error for a stream whose body ended before the answer did."""
    return UpstreamConnectionError(
        f"upstream provider {provider!r} ended the stream early", provider=provider
    )
