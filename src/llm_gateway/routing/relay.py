"""A routed stream after the executor picked it: health accounting, and a watchdog on silence.

`guarded(...)` wraps a provider's chunk iterator. It records the deployment's time to first
token, a failure before or after it, and the end of the request; and it turns a silence
longer than the limit (until the first chunk: the request's remaining deadline; then
`stream_idle_timeout`) into `UpstreamTimeout`, which the API layer renders as one SSE error
event. The watchdog is one timer per stream re-armed lazily, not one per chunk.

The executor awaits the first chunk through the same generator (which then yields it
again to the reader), so a routed stream costs one generator layer per chunk.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import TypeVar

from llm_gateway.core.errors import ProviderError, UpstreamConnectionError, UpstreamTimeout
from llm_gateway.routing.capacity import tokens_used
from llm_gateway.routing.health import DeploymentHealth
from llm_gateway.routing.latency import LatencyWindow
from llm_gateway.routing.observers import Outcome

Report = Callable[[Outcome, float, "float | None", "ProviderError | None"], None]

C = TypeVar("C")


class Watchdog:
    """Cancels the waiting task when one wait outlasts its limit, and remembers it did."""

    __slots__ = ("_due", "_handle", "_limit", "_loop", "_since", "_task", "fired")

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._handle: asyncio.TimerHandle | None = None
        self._due = 0.0
        self._since: float | None = None
        self._limit = 0.0
        self._task: asyncio.Task[object] | None = None
        self.fired = False

    def arm(self, limit: float) -> None:
        since = self._since = self._loop.time()
        self._limit = limit
        if self._task is None:  # once per reader: `current_task` per chunk was 9% of a stream's CPU
            self._task = asyncio.current_task()
        due = since + limit
        if self._handle is not None and self._due > due:
            self._handle.cancel()
            self._handle = None
        if self._handle is None:
            self._due = due
            self._handle = self._loop.call_at(due, self._check)

    def disarm(self) -> None:
        self._since = None

    def handover(self) -> None:
        """The stream changes readers here (the executor awaited the first chunk, perhaps in a
        hedge's task; the client's request task reads the rest): the next `arm` asks again."""
        self._task = None

    def _check(self) -> None:
        self._handle = None
        if self._since is None or self._task is None:
            return
        due = self._since + self._limit
        if self._loop.time() >= due:
            self.fired = True
            self._task.cancel()
        else:
            self._due = due
            self._handle = self._loop.call_at(due, self._check)

    def close(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None


async def guarded(
    stream: AsyncIterator[C],
    health: DeploymentHealth,
    *,
    clock: Callable[[], float],
    first_limit: float | None,
    idle: float | None,
    window: LatencyWindow | None = None,
    report: Report | None = None,
) -> AsyncGenerator[C, None]:
    """Yield `stream`'s chunks, recording the deployment's outcome (`health.begin` was called).

    The first chunk is yielded twice: first to the executor, which awaits it to know the
    attempt worked, then to whoever reads the stream. With no idle limit and no token
    budget to count, the rest is relayed as is: the watchdog costs only when configured.
    """
    started = clock()
    answered = False
    first_chunk: float | None = None
    outcome, failure = Outcome.ANSWERED, None
    tokens = 0
    watch = Watchdog() if first_limit is not None or idle is not None else None
    try:
        try:
            first = await _next(stream, watch, first_limit, health, answered)
        except StopAsyncIteration:
            raise UpstreamConnectionError(
                f"upstream provider {health.target.provider.name!r} sent an empty stream",
                provider=health.target.provider.name,
            ) from None
        answered = True
        now = clock()
        first_chunk = now - started
        health.answered(now, now - started)
        if window is not None:
            window.add(now - started)
        count_tokens = health.capacity is not None and health.capacity.tpm is not None
        if count_tokens:
            tokens += tokens_used(first)
        yield first
        yield first
        if watch is not None:
            watch.handover()
        if idle is None and not count_tokens:
            async for chunk in stream:
                yield chunk
            return
        while True:
            try:
                chunk = await _next(stream, watch, idle, health, answered)
            except StopAsyncIteration:
                return
            if count_tokens:
                tokens += tokens_used(chunk)
            yield chunk
    except ProviderError as error:
        health.failed(clock(), clock() - started, error)
        outcome, failure = Outcome.FAILED, error
        raise
    except (asyncio.CancelledError, GeneratorExit):
        health.abandoned(clock(), clock() - started, answered)
        outcome = Outcome.ABANDONED
        raise
    finally:
        if watch is not None:
            watch.close()
        health.end(clock(), tokens)
        if report is not None:
            report(outcome, clock() - started, first_chunk, failure)
        await close(stream)


async def _next(
    stream: AsyncIterator[C],
    watch: Watchdog | None,
    limit: float | None,
    health: DeploymentHealth,
    answered: bool,
) -> C:
    """The next chunk, or `UpstreamTimeout` if it takes longer than `limit` (None: no limit)."""
    if watch is None or limit is None:
        return await stream.__anext__()
    watch.arm(limit)
    try:
        return await stream.__anext__()
    except asyncio.CancelledError:
        if not watch.fired:
            raise
        _uncancel()
        raise _stalled(health, limit, answered) from None
    finally:
        watch.disarm()


def _uncancel() -> None:
    task = asyncio.current_task()
    if task is not None:
        task.uncancel()


def _stalled(health: DeploymentHealth, limit: float | None, answered: bool) -> UpstreamTimeout:
    provider = health.target.provider.name
    if answered:
        message = f"upstream provider {provider!r} stalled: no data for {limit:g}s mid-stream"
    else:
        message = f"upstream provider {provider!r} sent no first token within {limit:g}s"
    return UpstreamTimeout(message, provider=provider)


async def close(stream: AsyncIterator[C]) -> None:
    aclose = getattr(stream, "aclose", None)
    if aclose is not None:
        await aclose()
