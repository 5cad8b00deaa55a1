"""The attempt loop: pick a deployment, call it, and report which one served.

Streams are opened and their first chunk awaited here, so a failure before any byte
reaches the client is still an ordinary error (a proper HTTP status), and this is the
only place that peeks at a stream.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from llm_gateway.core.errors import UpstreamConnectionError
from llm_gateway.routing.deployments import Group, Target

T = TypeVar("T")
C = TypeVar("C")


@dataclass(slots=True)
class Served(Generic[T]):
    """A result and the deployment that produced it."""

    value: T
    target: Target
    attempts: int = 1


class Executor:
    def __init__(self, rng: random.Random | None = None) -> None:
        self._rng = rng or random.Random()

    def choose(self, group: Group) -> Target:
        targets = group.targets
        if len(targets) == 1:
            return targets[0]
        return self._rng.choices(targets, weights=[t.weight for t in targets])[0]

    async def call(self, group: Group, attempt: Callable[[Target], Awaitable[T]]) -> Served[T]:
        target = self.choose(group)
        return Served(await attempt(target), target)

    async def open_stream(
        self, group: Group, attempt: Callable[[Target], AsyncIterator[C]]
    ) -> Served[AsyncIterator[C]]:
        target = self.choose(group)
        return Served(await peek(attempt(target), target), target)


async def peek(stream: AsyncIterator[C], target: Target) -> AsyncIterator[C]:
    """Await the first chunk now; return an iterator that replays it, then the rest."""
    try:
        first = await anext(stream)
    except StopAsyncIteration:
        raise UpstreamConnectionError(
            f"upstream provider {target.provider.name!r} sent an empty stream", provider=target.provider.name
        ) from None
    except BaseException:
        await _close(stream)
        raise
    return _replay(first, stream)


async def _replay(first: C, stream: AsyncIterator[C]) -> AsyncIterator[C]:
    try:
        yield first
        async for chunk in stream:
            yield chunk
    finally:
        await _close(stream)


async def _close(stream: AsyncIterator[C]) -> None:
    aclose = getattr(stream, "aclose", None)
    if aclose is not None:
        await aclose()
