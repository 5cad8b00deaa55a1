"""The exchanges every HTTP provider has with its upstream: POST JSON and parse the answer, or
POST and read a stream of events. Each takes the provider's own error mapper.

This is the one place upstream bodies are read (`read_body`, `body_chunks`, and `sse_events`
below them), so a limit on body sizes belongs here. A stream that stops before its protocol's
terminal event is an `UpstreamConnectionError` from `early_end`, whichever provider it is.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any, NamedTuple

import aiohttp

from llm_gateway.core.errors import ProviderError, UpstreamConnectionError, UpstreamUnavailable
from llm_gateway.core.types import JSON
from llm_gateway.providers.transport import HttpClient, parse_json_body, sse_events

ErrorMapper = Callable[[int, bytes, Mapping[str, str]], ProviderError]
"""A provider's mapping of an error response (status, body, headers) to a gateway error."""

SSE = tuple[str | None, bytes]
"""One Server-Sent Event: its `event` name (None when unnamed) and its `data` bytes."""


class Reply(NamedTuple):
    """A successful JSON answer: the parsed body and the response headers."""

    data: Any
    headers: Mapping[str, str]


async def read_body(response: aiohttp.ClientResponse) -> bytes:
    """The whole body of a response."""
    return await response.read()


def body_chunks(response: aiohttp.ClientResponse) -> AsyncIterator[bytes]:
    """A streamed body's bytes as they arrive (for binary event streams)."""
    return response.content.iter_any()


async def raise_for_status(response: aiohttp.ClientResponse, error: ErrorMapper) -> None:
    """Raise the mapped error when the status is 400 or above."""
    if response.status >= 400:
        raise error(response.status, await read_body(response), response.headers)


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
        raw = await read_body(response)
        if response.status >= 400:
            raise error(response.status, raw, response.headers)
        return Reply(parse_json_body(raw, http.provider), response.headers)


def json_object(data: Any, provider: str) -> JSON:
    """`data` when it is a JSON object; any other answer is the upstream's failure (502)."""
    if not isinstance(data, dict):
        raise UpstreamUnavailable(
            f"upstream provider {provider!r} returned a malformed response", provider=provider
        )
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
) -> AsyncIterator[aiohttp.ClientResponse]:
    """POST for a streamed answer and yield the response once its status is a success.

    Leaving the block, however it happens, closes the upstream request.
    """
    async with http.request(
        "POST", url, body=body, headers=headers, timeout=timeout, stream=True
    ) as response:
        await raise_for_status(response, error)
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
        async for event in sse_events(response):
            yield event
    if finished is None or not finished():
        raise early_end(http.provider)


def early_end(provider: str) -> UpstreamConnectionError:
    """The error for a stream whose body ended before the answer did."""
    return UpstreamConnectionError(
        f"upstream provider {provider!r} ended the stream early", provider=provider
    )
