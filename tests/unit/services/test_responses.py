"""The Responses service in-process (services/responses.py): native or translated per
deployment, conversation state per caller, built-in tools routed to native deployments,
and the usage the hook chain sees."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from llm_gateway.core.capabilities import Capability
from llm_gateway.core.context import Call, Operation, Principal, RequestContext
from llm_gateway.core.errors import InvalidRequest, NotFound
from llm_gateway.core.types import JSON
from llm_gateway.services.pipeline import Pipeline
from llm_gateway.services.responses import OWNER, owner_of
from tests.fakes.responses import answer, make_response, response_events
from tests.stubs import CHAT_USAGE, RecordingHook, StubProvider, context, pipeline


class ResponsesStub(StubProvider):
    """Serves the Responses API natively, answering as the fake upstream does."""

    capabilities = frozenset({Capability.CHAT, Capability.RESPONSES})
    serves_responses = True

    async def responses(self, body: JSON, model: str, *, timeout: float | None = None) -> JSON:
        await self._called("responses", body, model)
        return make_response(body, model, answer(body, model))

    def responses_stream(
        self, body: JSON, model: str, *, timeout: float | None = None
    ) -> AsyncIterator[JSON]:
        events = response_events(make_response(body, model, answer(body, model)))
        return self._relay("responses_stream", body, model, None, events)


def call(body: dict[str, Any], owner: str = "master", operation: Operation = Operation.RESPONSES) -> Call:
    return Call(
        operation, body, model=body.get("model"), stream=bool(body.get("stream")), options={OWNER: owner}
    )


async def collect(stream: AsyncIterator[Any]) -> list[Any]:
    try:
        return [item async for item in stream]
    finally:
        await stream.aclose()  # type: ignore[attr-defined]


def two(native: StubProvider, chat: StubProvider) -> Pipeline:
    models = {
        "native": {"deployments": [{"provider": native.name, "model": "up-native"}]},
        "chat": {"deployments": [{"provider": chat.name, "model": "up-chat"}]},
        "mixed": {
            "deployments": [
                {"provider": native.name, "model": "up-native"},
                {"provider": chat.name, "model": "up-chat"},
            ]
        },
    }
    return pipeline(native, chat, models=models)


async def test_a_native_deployment_gets_the_body_as_sent_and_a_chat_one_a_translation() -> None:
    native, chat = ResponsesStub("n"), StubProvider("c", reply="translated")
    gateway = two(native, chat)
    body = {"model": "native", "input": "hi", "metadata": {"k": "v"}}
    answered = await gateway.complete(context(), call(body))
    assert native.requests[-1].body == body and answered["output"][0]["content"][0]["text"] == "echo: hi"
    answered = await gateway.complete(context(), call({**body, "model": "chat"}))
    assert chat.requests[-1].body["messages"] == [{"role": "user", "content": "hi"}]
    assert answered["output"][0]["content"][0]["text"] == "translated"
    assert answered["metadata"] == {"k": "v"} and answered["model"] == "chat"


async def test_a_follow_up_rebuilds_the_conversation_for_a_chat_deployment() -> None:
    native, chat = ResponsesStub("n"), StubProvider("c", reply="noted")
    gateway = two(native, chat)
    first = await gateway.complete(context(), call({"model": "chat", "input": "my name is Ada"}))
    await gateway.complete(
        context(), call({"model": "chat", "input": "who?", "previous_response_id": first["id"]})
    )
    messages = chat.requests[-1].body["messages"]
    assert [(m["role"], m["content"]) for m in messages] == [
        ("user", "my name is Ada"),
        ("assistant", "noted"),
        ("user", "who?"),
    ]


async def test_a_native_follow_up_passes_the_id_through_only_where_it_was_stored() -> None:
    native, chat = ResponsesStub("n"), StubProvider("c", reply="noted")
    gateway = two(native, chat)
    first = await gateway.complete(context(), call({"model": "chat", "input": "my name is Ada"}))
    await gateway.complete(
        context(), call({"model": "native", "input": "who?", "previous_response_id": first["id"]})
    )
    sent = native.requests[-1].body
    assert "previous_response_id" not in sent
    assert [item.get("role") for item in sent["input"]] == ["user", "assistant", "user"]
    assert all("id" not in item for item in sent["input"])
    second = await gateway.complete(context(), call({"model": "native", "input": "again"}))
    await gateway.complete(
        context(), call({"model": "native", "input": "x", "previous_response_id": second["id"]})
    )
    assert native.requests[-1].body["previous_response_id"] == second["id"]


async def test_another_callers_response_is_not_found() -> None:
    gateway = pipeline(StubProvider("p"))
    mine = await gateway.complete(context(), call({"model": "p", "input": "hi"}, owner="key-a"))
    with pytest.raises(NotFound):
        await gateway.complete(
            context(), call({"model": "p", "input": "x", "previous_response_id": mine["id"]}, "key-b")
        )
    assert owner_of(Principal("key", key_id="key-a")) == "key-a"
    assert owner_of(Principal("open")) == "open"


async def test_store_false_keeps_nothing() -> None:
    gateway = pipeline(StubProvider("p"))
    answered = await gateway.complete(context(), call({"model": "p", "input": "hi", "store": False}))
    with pytest.raises(NotFound):
        await gateway.complete(
            context(), call({"model": "p", "input": "x", "previous_response_id": answered["id"]})
        )


async def test_a_builtin_tool_is_routed_to_native_deployments_only() -> None:
    native, chat = ResponsesStub("n"), StubProvider("c")
    gateway = two(native, chat)
    body = {"model": "mixed", "input": "news?", "tools": [{"type": "web_search"}]}
    for _ in range(5):
        await gateway.complete(context(), call(body))
    assert len(native.requests) == 5 and not chat.requests
    with pytest.raises(InvalidRequest, match="'web_search'"):
        await gateway.complete(context(), call({**body, "model": "chat"}))


async def test_a_translated_stream_is_recorded_and_metered_for_hooks() -> None:
    hook = RecordingHook()
    gateway = pipeline(StubProvider("p", reply="hello"), hooks=[hook])
    ctx = context()
    events = await collect(await gateway.stream(ctx, call({"model": "p", "input": "hi", "stream": True})))
    assert events[-1]["type"] == "response.completed"
    assert hook.ends[-1].usage == CHAT_USAGE
    follow = {"model": "p", "input": "x", "previous_response_id": events[-1]["response"]["id"]}
    await gateway.complete(context(), call(follow))


async def test_a_native_stream_is_metered_from_its_terminal_event() -> None:
    hook = RecordingHook()
    gateway = pipeline(ResponsesStub("n"), hooks=[hook])
    ctx: RequestContext = context()
    events = await collect(
        await gateway.stream(ctx, call({"model": "n", "input": "two words", "stream": True}))
    )
    assert events[-1]["type"] == "response.completed"
    assert hook.ends[-1].usage == {"prompt_tokens": 2, "completion_tokens": 3, "total_tokens": 5}
    answered = await gateway.complete(context(), call({"model": "n", "input": "two words"}))
    assert ctx.usage is not None and answered["usage"]["input_tokens"] == 2


async def test_input_tokens_are_counted_here_with_the_previous_conversation() -> None:
    provider = StubProvider("p")
    gateway = pipeline(provider)
    first = await gateway.complete(
        context(), call({"model": "p", "input": "a fairly long first message here"})
    )
    alone = await gateway.complete(
        context(), call({"model": "p", "input": "hi"}, operation=Operation.RESPONSES_INPUT_TOKENS)
    )
    follow = {
        "model": "p",
        "input": "hi",
        "previous_response_id": first["id"],
        "tools": [{"type": "web_search"}],
    }
    more = await gateway.complete(context(), call(follow, operation=Operation.RESPONSES_INPUT_TOKENS))
    assert alone["object"] == "response.input_tokens"
    assert more["input_tokens"] > alone["input_tokens"] > 0
    assert len(provider.requests) == 1
