"""Server-Sent Events out: a response that flushes each frame and stops when the client leaves."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from starlette.types import Receive, Send

from llm_gateway.api.disconnect import watch_disconnect

SSE_HEADERS: list[tuple[bytes, bytes]] = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]


async def close_iterator(iterator: AsyncIterator[Any]) -> None:
    aclose = getattr(iterator, "aclose", None)
    if aclose is not None:
        await aclose()


async def send_event_stream(
    frames: AsyncIterator[bytes],
    headers: list[tuple[bytes, bytes]],
    receive: Receive,
    send: Send,
    *,
    farewell: bytes | None = None,
) -> None:
    """Send `frames` as a 200 event stream; a client disconnect cancels the source.

    Cancelling closes the source iterator, whose `async with` closes the upstream request.
    Cancelled by the server instead (the drain timeout at shutdown, a second SIGTERM), the
    stream ends with `farewell` (the dialect's error event) and a complete body, so the
    client sees an error rather than a truncated stream.
    """
    task = asyncio.current_task()
    assert task is not None
    disconnected: list[bool] = []
    watcher = asyncio.get_running_loop().create_task(watch_disconnect(receive, task, disconnected))
    try:
        await send({"type": "http.response.start", "status": 200, "headers": [*SSE_HEADERS, *headers]})
        async for data in frames:
            await send({"type": "http.response.body", "body": data, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
    except asyncio.CancelledError:
        if disconnected and task.uncancel() == 0:
            return
        if not disconnected and farewell is not None:
            await _say_farewell(send, farewell)
        raise
    finally:
        watcher.cancel()
        await close_iterator(frames)


async def _say_farewell(send: Send, frame: bytes) -> None:
    """The last event and the end of the body, written even though the task is cancelled
    (the transport's writes do not block; a client too slow to take them loses them)."""
    try:
        await send({"type": "http.response.body", "body": frame, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
    except (asyncio.CancelledError, OSError, RuntimeError):
        pass
