"""A routed stream after the executor picked it: health accounting, and a watchdog on silence.

`guarded(...)` wraps a provider's chunk iterator. It records the deployment's time to first
token, a failure before or after it, and the end of the request; and it turns a silence
longer than the limit (until the first chunk: the request's remaining deadline; then
`stream_idle_timeout`) into `UpstreamTimeout`, which the API layer renders as one SSE error
event. The watchdog is one timer per stream re-armed lazily, not one per chunk.

`Primed` hands the stream on with its first chunk already awaited (that is how the
executor knew the attempt succeeded) and closes the rest when closed, started or not.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import Generic, TypeVar

from llm_gateway.core.errors import ProviderError, UpstreamConnectionError, UpstreamTimeout
from llm_gateway.routing.capacity import tokens_used
from llm_gateway.routing.health import DeploymentHealth
from llm_gateway.routing.latency import LatencyWindow

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
    first_limit: float,
    idle: float | None,
    window: LatencyWindow | None = None,
) -> AsyncGenerator[C, None]:
    """Yield `stream`'s chunks, recording the deployment's outcome; `health.begin` was called."""
    started = clock()
    watch = Watchdog()
    limit: float | None = first_limit
    answered = False
    count_tokens = health.capacity is not None and health.capacity.tpm is not None
    tokens = 0
    try:
        while True:
            if limit is not None:
                watch.arm(limit)
            try:
                chunk = await stream.__anext__()
            except StopAsyncIteration:
                if answered:
                    return
                raise UpstreamConnectionError(
                    f"upstream provider {health.target.provider.name!r} sent an empty stream",
                    provider=health.target.provider.name,
                ) from None
            except asyncio.CancelledError:
                if not watch.fired:
                    raise
                _uncancel()
                raise _stalled(health, limit, answered) from None
            finally:
                watch.disarm()
            if not answered:
                answered = True
                limit = idle
                elapsed = clock() - started
                health.answered(clock(), elapsed)
                if window is not None:
                    window.add(elapsed)
            if count_tokens:
                tokens += tokens_used(chunk)
            yield chunk
    except ProviderError as error:
        health.failed(clock(), clock() - started, error)
        raise
    except (asyncio.CancelledError, GeneratorExit):
        health.abandoned(clock(), clock() - started, answered)
        raise
    finally:
        watch.close()
        health.end(clock(), tokens)
        await close(stream)


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


class Primed(Generic[C]):
    """A started stream: the chunk awaited during routing first, then the rest."""

    __slots__ = ("_first", "_pending", "_rest")

    def __init__(self, first: C, rest: AsyncGenerator[C, None]) -> None:
        self._first: C | None = first
        self._pending = True
        self._rest = rest

    def __aiter__(self) -> Primed[C]:
        return self

    async def __anext__(self) -> C:
        if self._pending:
            self._pending = False
            first, self._first = self._first, None
            return first  # type: ignore[return-value]
        return await self._rest.__anext__()

    async def aclose(self) -> None:
        self._pending = False
        self._first = None
        await self._rest.aclose()
