"""The hook chain: cross-cutting work around every model call, on every front door.

Governance (keys, limits, budgets), usage and spend, the response cache and guardrails
are hooks; none of them edits a router or a service. A hook overrides any of:

- `before(ctx, call)`: may refuse by raising a `GatewayError` (it reaches the client
  with its own status; the chain never swallows it), or answer early by returning an
  `Answer` (a cache hit), or change `call.body` (a redacted prompt). Runs in chain order.
- `after(ctx, call, value)`: a non-streaming result on its way out; returns it, possibly
  changed, or raises to refuse it. Runs in reverse order.
- `wrap_stream(ctx, call, chunks)`: a streamed result on its way out (output guardrails):
  returns the chunks to send instead, in the operation's own chunk shape, or raises from
  the iterator to end the stream (one error event). Applied in reverse order, like
  `after`; only hooks that override it are asked, so other chains pay nothing. The
  returned iterator must close `chunks` when it is closed.
- `on_end(ctx, call, usage, error)`: exactly once for every call whose `before` ran,
  streamed or not, on every exit path: completed, refused by a later hook, upstream error,
  client disconnect, cancelled. For a stream it runs when the stream ends. Synchronous
  on purpose: it runs in `finally` blocks and during cancellation, so it queues work
  (a spend row, a released slot) instead of awaiting a database. Runs in reverse order.

Built once in the lifespan. An empty chain costs nothing: the pipeline skips it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from llm_gateway.core.context import Call, RequestContext
from llm_gateway.core.types import Usage


@dataclass(frozen=True, slots=True)
class Answer:
    """An early answer from `before`: a result for a plain call, an async iterator of the
    operation's chunks for a streamed one. `usage` is what it cost (None: nothing)."""

    value: Any
    usage: Usage | None = None


class Hook:
    """A no-op hook; subclasses override what they need."""

    name: str = "hook"

    async def before(self, ctx: RequestContext, call: Call) -> Answer | None:
        return None

    async def after(self, ctx: RequestContext, call: Call, value: Any) -> Any:
        return value

    def wrap_stream(self, ctx: RequestContext, call: Call, chunks: AsyncIterator[Any]) -> AsyncIterator[Any]:
        return chunks

    def on_end(
        self, ctx: RequestContext, call: Call, usage: Usage | None, error: BaseException | None
    ) -> None:
        return None


Meter = Callable[[Any], None]
"""Fed each chunk of a stream, to total its usage."""


class HookChain:
    def __init__(self, hooks: Sequence[Hook] = ()) -> None:
        self.hooks = tuple(hooks)
        self._wraps = frozenset(
            index for index, hook in enumerate(self.hooks) if type(hook).wrap_stream is not Hook.wrap_stream
        )

    def __bool__(self) -> bool:
        return bool(self.hooks)

    async def complete(
        self,
        ctx: RequestContext,
        call: Call,
        proceed: Callable[[], Awaitable[Any]],
        usage_of: Callable[[Any], Usage | None],
    ) -> Any:
        """`proceed()` (the routed call) inside the chain: before, after, on_end."""
        entered = 0
        error: BaseException | None = None
        try:
            answer = None
            for hook in self.hooks:
                entered += 1
                answer = await hook.before(ctx, call)
                if answer is not None:
                    break
            if answer is None:
                value = await proceed()
                ctx.usage = usage_of(value)
            else:
                value, ctx.usage = answer.value, answer.usage
            for hook in reversed(self.hooks[:entered]):
                value = await hook.after(ctx, call, value)
            return value
        except BaseException as exc:
            error = exc
            raise
        finally:
            self._end(ctx, call, entered, error)

    async def stream(
        self,
        ctx: RequestContext,
        call: Call,
        proceed: Callable[[], Awaitable[AsyncIterator[Any]]],
        meter: Callable[[RequestContext], Meter],
    ) -> AsyncIterator[Any]:
        """The routed stream inside the chain. `on_end` runs when the returned stream ends,
        fails or is closed (`aclose`), whichever comes first, even if it was never read."""
        entered = 0
        try:
            answer = None
            for hook in self.hooks:
                entered += 1
                answer = await hook.before(ctx, call)
                if answer is not None:
                    break
            chunks: AsyncIterator[Any] = answer.value if answer is not None else await proceed()
            for index in reversed(range(entered)) if self._wraps else ():
                if index in self._wraps:
                    chunks = self.hooks[index].wrap_stream(ctx, call, chunks)
        except BaseException as exc:
            self._end(ctx, call, entered, exc)
            raise
        if answer is not None:
            ctx.usage = answer.usage
            return EndedStream(chunks, None, lambda error: self._end(ctx, call, entered, error))
        return EndedStream(chunks, meter(ctx), lambda error: self._end(ctx, call, entered, error))

    def _end(self, ctx: RequestContext, call: Call, entered: int, error: BaseException | None) -> None:
        for hook in reversed(self.hooks[:entered]):
            hook.on_end(ctx, call, ctx.usage, error)


class EndedStream(AsyncIterator[Any]):
    """A stream that calls `on_end(error)` exactly once: at its end, on its first failure,
    or when closed early (error: `CancelledError`, the reader gave up)."""

    __slots__ = ("_chunks", "_ended", "_meter", "_on_end")

    def __init__(
        self,
        chunks: AsyncIterator[Any],
        meter: Meter | None,
        on_end: Callable[[BaseException | None], None],
    ) -> None:
        self._chunks = chunks
        self._meter = meter
        self._on_end = on_end
        self._ended = False

    def __aiter__(self) -> EndedStream:
        return self

    async def __anext__(self) -> Any:
        try:
            chunk = await self._chunks.__anext__()
        except StopAsyncIteration:
            self._end(None)
            raise
        except BaseException as exc:
            self._end(exc)
            raise
        if self._meter is not None:
            self._meter(chunk)
        return chunk

    async def aclose(self) -> None:
        try:
            aclose = getattr(self._chunks, "aclose", None)
            if aclose is not None:
                await aclose()
        finally:
            self._end(asyncio.CancelledError("the stream was closed before its end"))

    def _end(self, error: BaseException | None) -> None:
        if not self._ended:
            self._ended = True
            self._on_end(error)
