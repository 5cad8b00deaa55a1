"""Server-Sent Events out: chunk dicts to bytes, and a response that stops when the client leaves."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import orjson
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from llm_gateway.api.disconnect import watch_disconnect
from llm_gateway.core.errors import GatewayError

log = logging.getLogger("llm_gateway.sse")

DONE = b"data: [DONE]\n\n"
SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}


def encode(data: Any, event: str | None = None) -> bytes:
    body = b"data: " + orjson.dumps(data) + b"\n\n"
    return b"event: " + event.encode() + b"\n" + body if event else body


def error_event(error: GatewayError) -> bytes:
    """A failure after the first chunk: one OpenAI-style error event (the SDKs raise on it)."""
    return encode(error.to_body())


async def openai_events(chunks: AsyncIterator[Any]) -> AsyncIterator[bytes]:
    """OpenAI chat chunks as SSE, `[DONE]` at the end, or an error event if upstream fails."""
    try:
        async for chunk in chunks:
            yield b"data: " + orjson.dumps(chunk) + b"\n\n"
    except GatewayError as exc:
        log.warning("stream failed after the first chunk: %s", exc.message)
        yield error_event(exc)
        return
    finally:
        # Close the source now, not at garbage collection: it holds the upstream connection.
        await close_iterator(chunks)
    yield DONE


async def close_iterator(iterator: AsyncIterator[Any]) -> None:
    aclose = getattr(iterator, "aclose", None)
    if aclose is not None:
        await aclose()


class EventStreamResponse(Response):
    """Streams SSE bytes, flushing each as it comes; a client disconnect cancels the source.

    Cancelling closes the source iterator, whose `async with` closes the upstream request.
    """

    media_type = "text/event-stream"

    def __init__(
        self,
        events: AsyncIterator[bytes],
        headers: Mapping[str, str] | None = None,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(content=None, status_code=200, headers={**SSE_HEADERS, **(headers or {})})
        # The length is unknown: drop the `content-length: 0` Response adds for an empty body.
        self.raw_headers = [(k, v) for k, v in self.raw_headers if k != b"content-length"]
        self.events = events
        self.on_close = on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        task = asyncio.current_task()
        assert task is not None
        disconnected: list[bool] = []
        watcher = asyncio.get_running_loop().create_task(watch_disconnect(receive, task, disconnected))
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
            async for data in self.events:
                await send({"type": "http.response.body", "body": data, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except asyncio.CancelledError:
            if not (disconnected and task.uncancel() == 0):
                raise
        finally:
            watcher.cancel()
            await close_iterator(self.events)
            if self.on_close is not None:
                self.on_close()
