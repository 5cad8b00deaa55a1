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


async def until_disconnected(receive: Receive, work: Awaitable[T]) -> T:
    """Await `work`; if the client disconnects first, cancel it and raise ClientDisconnected.

    Call only after the body has been read: from then on the server's `receive` yields
    nothing but `http.disconnect`. The watcher cancels the current task, so `work` (and
    the upstream request inside it) is torn down by ordinary cancellation.
    """
    task = asyncio.current_task()
    assert task is not None
    disconnected: list[bool] = []
    watcher = asyncio.get_running_loop().create_task(watch_disconnect(receive, task, disconnected))
    try:
        return await work
    except asyncio.CancelledError:
        if disconnected and task.uncancel() == 0:
            raise ClientDisconnected("client disconnected") from None
        raise
    finally:
        watcher.cancel()
