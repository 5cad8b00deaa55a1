"""The hook chain's contract (services/hooks.py), on every exit path, for a plain call and a
stream: `before` in order until one refuses or answers, `after` in reverse for a plain
result, and `on_end` exactly once for every hook whose `before` ran, with the usage and the
error the call ended with. Over a pipeline of in-process stubs, so "no upstream call" is
what the stub recorded."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from llm_gateway.core.context import Call, Operation
from llm_gateway.core.errors import (
    AllDeploymentsFailed,
    LimitExceeded,
    PermissionDenied,
    PolicyError,
    UpstreamConnectionError,
    UpstreamStatusError,
)
from llm_gateway.core.types import ChatChunk, Usage, make_usage
from llm_gateway.services.hooks import Answer, EndedStream, Hook, HookChain
from llm_gateway.services.pipeline import Pipeline
from tests.stubs import CHAT_USAGE, RecordingHook, Seen, StubProvider, chunk, completion, context, pipeline

ANSWER_USAGE: Usage = make_usage(7, 0)
BODY = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


def chat(*, stream: bool = False) -> Call:
    body = {**BODY, "stream": True, "stream_options": {"include_usage": True}} if stream else BODY
    return Call(Operation.CHAT, body, model="m", stream=stream)


def chain(*hooks: RecordingHook) -> tuple[Pipeline, StubProvider]:
    upstream = StubProvider("m")
    return pipeline(upstream, hooks=hooks), upstream


def three(**middle: Any) -> tuple[list[Seen], RecordingHook, RecordingHook, RecordingHook]:
    """Hooks a, b, c sharing one log; `middle` scripts b."""
    log: list[Seen] = []
    return log, RecordingHook("a", log), RecordingHook("b", log, **middle), RecordingHook("c", log)


async def read(stream: AsyncIterator[Any]) -> list[Any]:
    return [item async for item in stream]


async def answer_chunks() -> AsyncIterator[ChatChunk]:
    yield chunk("cache", {"role": "assistant", "content": "cached"}, finish="stop")


def test_an_empty_chain_is_falsy() -> None:
    assert not HookChain()
    assert HookChain([Hook()])


async def test_an_empty_chain_is_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    async def tripwire(*args: Any) -> Any:
        raise AssertionError("the chain ran with no hooks")

    monkeypatch.setattr(HookChain, "complete", tripwire)
    monkeypatch.setattr(HookChain, "stream", tripwire)
    service, upstream = chain()
    ctx = context()
    assert await service.complete(ctx, chat()) == completion("hello", "up-m")
    assert ctx.route is not None and ctx.route.provider == "m"
    stream = await service.stream(context(), chat(stream=True))
    assert not isinstance(stream, EndedStream)  # the routed stream itself
    assert len(await read(stream)) == 3
    assert upstream.finished == 1


async def test_success() -> None:
    log, a, b, c = three()
    service, upstream = chain(a, b, c)
    value = await service.complete(context(), chat())
    assert value["choices"][0]["message"]["content"] == "hello"
    assert [(s.what, s.hook) for s in log] == [
        ("before", "a"),
        ("before", "b"),
        ("before", "c"),
        ("after", "c"),
        ("after", "b"),
        ("after", "a"),
        ("on_end", "c"),
        ("on_end", "b"),
        ("on_end", "a"),
    ]
    assert all(s.usage == CHAT_USAGE and s.error is None for s in log if s.what == "on_end")
    assert len(upstream.requests) == 1


async def test_success_streamed() -> None:
    log, a, b, c = three()
    service, upstream = chain(a, b, c)
    stream = await service.stream(context(), chat(stream=True))
    await anext(stream)
    assert a.count("on_end") == 0  # not before the stream ends
    await read(stream)
    await stream.aclose()  # type: ignore[attr-defined]  # as the endpoint always does: no second on_end
    assert [(s.what, s.hook) for s in log] == [
        ("before", "a"),
        ("before", "b"),
        ("before", "c"),
        ("on_end", "c"),
        ("on_end", "b"),
        ("on_end", "a"),
    ]
    assert all(s.usage == CHAT_USAGE and s.error is None for s in a.ends + b.ends + c.ends)
    assert (upstream.finished, upstream.closed) == (1, 1)


REFUSALS = [PermissionDenied("not for you"), LimitExceeded("slow down")]


@pytest.mark.parametrize("refusal", REFUSALS, ids=lambda e: type(e).__name__)
async def test_a_refusing_hook(refusal: PolicyError) -> None:
    log, a, b, c = three(refuse=refusal)
    service, upstream = chain(a, b, c)
    with pytest.raises(PolicyError) as caught:
        await service.complete(context(), chat())
    assert caught.value is refusal
    assert caught.value.status_code == {PermissionDenied: 403, LimitExceeded: 429}[type(refusal)]
    assert [(s.what, s.hook, s.error) for s in log] == [
        ("before", "a", None),
        ("before", "b", None),
        ("on_end", "b", refusal),
        ("on_end", "a", refusal),
    ]
    assert c.seen == []
    assert upstream.requests == []


@pytest.mark.parametrize("refusal", REFUSALS, ids=lambda e: type(e).__name__)
async def test_a_refusing_hook_streamed(refusal: PolicyError) -> None:
    log, a, b, c = three(refuse=refusal)
    service, upstream = chain(a, b, c)
    with pytest.raises(PolicyError) as caught:
        await service.stream(context(), chat(stream=True))
    assert caught.value is refusal
    assert [(s.what, s.hook, s.error) for s in log] == [
        ("before", "a", None),
        ("before", "b", None),
        ("on_end", "b", refusal),
        ("on_end", "a", refusal),
    ]
    assert c.seen == []
    assert upstream.requests == []


async def test_an_early_answer() -> None:
    cached = completion("cached", "cache")
    log, a, b, c = three(answer=Answer(cached, ANSWER_USAGE))
    service, upstream = chain(a, b, c)
    ctx = context()
    assert await service.complete(ctx, chat()) == cached
    assert [(s.what, s.hook) for s in log] == [
        ("before", "a"),
        ("before", "b"),
        ("after", "b"),
        ("after", "a"),
        ("on_end", "b"),
        ("on_end", "a"),
    ]
    assert [s.usage for s in a.ends + b.ends] == [ANSWER_USAGE, ANSWER_USAGE]
    assert c.seen == []
    assert upstream.requests == []
    assert ctx.route is None


async def test_an_early_answer_streamed() -> None:
    log, a, b, c = three(answer=Answer(answer_chunks(), ANSWER_USAGE))
    service, upstream = chain(a, b, c)
    stream = await service.stream(context(), chat(stream=True))
    [only] = await read(stream)
    assert only["choices"][0]["delta"]["content"] == "cached"
    assert [(s.what, s.hook) for s in log] == [
        ("before", "a"),
        ("before", "b"),
        ("on_end", "b"),
        ("on_end", "a"),
    ]
    assert [(s.usage, s.error) for s in a.ends + b.ends] == [(ANSWER_USAGE, None)] * 2
    assert c.seen == []
    assert upstream.requests == []


def rejected() -> UpstreamStatusError:
    return UpstreamStatusError("bad request upstream", status=400, provider="m")  # not retried


async def test_an_upstream_error() -> None:
    hook = RecordingHook()
    service, upstream = chain(hook)
    upstream.errors = [rejected()]
    with pytest.raises(AllDeploymentsFailed) as caught:
        await service.complete(context(), chat())
    assert [(s.what, s.error) for s in hook.seen] == [("before", None), ("on_end", caught.value)]
    assert caught.value.status_code == 400


async def test_an_upstream_error_streamed() -> None:
    hook = RecordingHook()
    service, upstream = chain(hook)
    upstream.errors = [rejected()]
    with pytest.raises(AllDeploymentsFailed) as caught:
        await service.stream(context(), chat(stream=True))
    assert [(s.what, s.error) for s in hook.seen] == [("before", None), ("on_end", caught.value)]
    assert upstream.closed == 1


async def test_a_result_refused_by_after() -> None:
    class Censor(RecordingHook):
        async def after(self, ctx: Any, call: Call, value: Any) -> Any:
            await super().after(ctx, call, value)
            raise PermissionDenied("the answer is withheld")

    log: list[Seen] = []
    outer, censor = RecordingHook("outer", log), Censor("censor", log)
    service, _ = chain(outer, censor)
    with pytest.raises(PermissionDenied) as caught:
        await service.complete(context(), chat())
    assert [(s.what, s.hook) for s in log] == [
        ("before", "outer"),
        ("before", "censor"),
        ("after", "censor"),
        ("on_end", "censor"),
        ("on_end", "outer"),
    ]
    assert [s.error for s in outer.ends + censor.ends] == [caught.value] * 2


async def test_a_stream_that_fails_midway() -> None:
    cut = UpstreamConnectionError("cut", provider="m")
    hook = RecordingHook()
    service, upstream = chain(hook)
    upstream.chunks = [chunk("up-m", {"role": "assistant", "content": "hel"}), cut]
    stream = await service.stream(context(), chat(stream=True))
    await anext(stream)
    assert hook.count("on_end") == 0
    with pytest.raises(UpstreamConnectionError):
        await anext(stream)
    await stream.aclose()  # type: ignore[attr-defined]
    assert [(s.what, s.error) for s in hook.seen] == [("before", None), ("on_end", cut)]
    assert (upstream.finished, upstream.closed) == (0, 1)


async def test_a_stream_closed_early_by_its_reader() -> None:
    hook = RecordingHook()
    service, upstream = chain(hook)
    stream = await service.stream(context(), chat(stream=True))
    await anext(stream)
    await stream.aclose()  # type: ignore[attr-defined]
    await stream.aclose()  # type: ignore[attr-defined]
    [end] = hook.ends
    assert isinstance(end.error, asyncio.CancelledError)
    assert (upstream.finished, upstream.closed) == (0, 1)


async def test_a_stream_never_read_but_closed() -> None:
    hook = RecordingHook()
    service, upstream = chain(hook)
    stream = await service.stream(context(), chat(stream=True))
    assert hook.count("on_end") == 0
    await stream.aclose()  # type: ignore[attr-defined]
    [end] = hook.ends
    assert isinstance(end.error, asyncio.CancelledError)
    assert (upstream.opened, upstream.closed) == (1, 1)  # the executor had opened it for its first chunk


async def test_a_call_cancelled_while_awaiting_the_upstream() -> None:
    hook = RecordingHook()
    service, upstream = chain(hook)
    upstream.hang = True
    task = asyncio.create_task(service.complete(context(), chat()))
    await upstream.waiting.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    [end] = hook.ends
    assert isinstance(end.error, asyncio.CancelledError)
    assert upstream.cancelled == 1


async def test_a_stream_cancelled_before_its_first_chunk() -> None:
    hook = RecordingHook()
    service, upstream = chain(hook)
    upstream.hang = True
    task = asyncio.create_task(service.stream(context(), chat(stream=True)))
    await upstream.waiting.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    [end] = hook.ends
    assert isinstance(end.error, asyncio.CancelledError)
    assert (upstream.cancelled, upstream.closed) == (1, 1)


async def test_a_hook_may_change_the_body() -> None:
    class Redact(Hook):
        async def before(self, ctx: Any, call: Call) -> Answer | None:
            call.body = {**call.body, "messages": [{"role": "user", "content": "[redacted]"}]}
            return None

    upstream = StubProvider("m")
    await pipeline(upstream, hooks=[Redact()]).complete(context(), chat())
    assert upstream.requests[0].body["messages"] == [{"role": "user", "content": "[redacted]"}]
