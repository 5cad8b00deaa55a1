"""Hedged requests: if the first attempt is slow to answer, race a second one against it.

`race` starts `first`; if it has not finished after `delay` seconds it asks `second` for a
backup attempt (None when there is no other deployment to send it to) and takes whichever
succeeds first. The loser is cancelled at once and awaited, so its upstream connection is
closed before the winner is returned; a loser that had already succeeded too is handed to
`discard` (a stream must be closed). A failure of one racer leaves the other running; only
when every racer has failed is the last failure raised. Non-upstream errors (a bug, a bad
request) end the race at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from llm_gateway.core.errors import ProviderError, is_retryable

T = TypeVar("T")


@dataclass(slots=True)
class Won(Generic[T]):
    value: T
    hedged: bool
    """The backup attempt won."""


async def race(
    first: Callable[[], Coroutine[Any, Any, T]],
    second: Callable[[], Coroutine[Any, Any, T] | None],
    delay: float,
    discard: Callable[[T], Awaitable[None]],
) -> Won[T]:
    loop = asyncio.get_running_loop()
    tasks = [loop.create_task(first())]
    winner: asyncio.Task[T] | None = None
    try:
        done, _ = await asyncio.wait(tasks, timeout=delay)
        if not done:
            backup = second()
            if backup is not None:
                tasks.append(loop.create_task(backup))
        winner = await _first_success(tasks)
        return Won(winner.result(), hedged=winner is not tasks[0])
    finally:
        await _settle(tasks, winner, discard)


async def _first_success(tasks: list[asyncio.Task[T]]) -> asyncio.Task[T]:
    pending = set(tasks)
    failure: BaseException | None = None
    while pending:
        done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        for task in tasks:
            if task not in done:
                continue
            error = task.exception()
            if error is None:
                return task
            if not (isinstance(error, ProviderError) and is_retryable(error)):
                raise error
            failure = error
    assert failure is not None
    raise failure


async def _settle(
    tasks: list[asyncio.Task[T]], winner: asyncio.Task[T] | None, discard: Callable[[T], Awaitable[None]]
) -> None:
    """Cancel the losers and wait until they are gone; close any that succeeded unused."""
    losers = [t for t in tasks if not t.done()]
    for task in losers:
        task.cancel()
    if losers:
        await asyncio.wait(losers)
    for task in tasks:
        if task is winner or task.cancelled() or task.exception() is not None:
            continue
        await discard(task.result())
