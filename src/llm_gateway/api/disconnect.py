"""Cancel a request's work when its client goes away, so no upstream call runs for nobody."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, TypeVar

from starlette.types import Receive

from llm_gateway.core.errors import GatewayError

T = TypeVar("T")


class ClientDisconnected(GatewayError):
    """The client closed the connection; nothing will read the answer (nginx's 499)."""

    status = 499
    error_type = "client_closed_request"


async def watch_disconnect(receive: Receive, task: asyncio.Task[Any], flag: list[bool]) -> None:
    """Cancel `task` when the client disconnects, noting it in `flag`."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            flag.append(True)
            task.cancel()
            return


WATCH_AFTER = 0.02
"""Seconds a request runs before its client is watched: most answers come sooner, and a
watcher is a task per request (about 7 µs of CPU, measured) where a timer costs under one.
A client gone before then is noticed when the watch starts (the server keeps the disconnect
for the next `receive`), so an upstream call runs at most this much longer for nobody."""


async def until_disconnected(receive: Receive, work: Awaitable[T]) -> T:
    """Await `work`; if the client disconnects first, cancel it and raise ClientDisconnected.

    Call only after the body has been read: from then on the server's `receive` yields
    nothing but `http.disconnect`. The watcher (started once `work` has run `WATCH_AFTER`)
    cancels the current task, so `work` (and the upstream request inside it) is torn down by
    ordinary cancellation.
    """
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    disconnected: list[bool] = []
    watchers: list[asyncio.Task[None]] = []

    def watch() -> None:
        watchers.append(loop.create_task(watch_disconnect(receive, task, disconnected)))

    timer = loop.call_later(WATCH_AFTER, watch)
    try:
        return await work
    except asyncio.CancelledError:
        if disconnected and task.uncancel() == 0:
            raise ClientDisconnected("client disconnected") from None
        raise
    finally:
        timer.cancel()
        for watcher in watchers:
            watcher.cancel()
