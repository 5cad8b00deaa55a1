"""The guardrail hook over the hook chain: which guardrails apply, input and output checks,
streams, and what a check that cannot run does (fails closed unless told otherwise)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest

from llm_gateway.core.context import Call, Operation, Principal, RequestContext, Scope
from llm_gateway.core.errors import GuardrailBlocked, GuardrailUnavailable
from llm_gateway.core.loader import ConfigError
from llm_gateway.services.guardrails.hook import GuardrailHook, build_guardrails
from llm_gateway.services.guardrails.outcomes import EXTRAS_KEY, HEADER
from llm_gateway.services.hooks import Hook, HookChain
from tests.stubs import chunk, context, event, gateway_config

CARD = "4111 1111 1111 1111"


def hook(guardrails: dict[str, Any], attached: list[str] | None = None) -> GuardrailHook:
    config = gateway_config(
        {
            "providers": {"mock": {"type": "mock"}},
            "models": {
                "m": {"deployments": [{"provider": "mock"}], "guardrails": attached or list(guardrails)},
                "other": {"deployments": [{"provider": "mock"}]},
            },
            "database_url": "sqlite:///:memory:",
            "guardrails": guardrails,
        }
    )
    built = build_guardrails(config)
    assert built is not None
    return built


def chat(text: str, model: str = "m", **body: Any) -> Call:
    messages = [{"role": "user", "content": text}]
    return Call(Operation.CHAT, {"model": model, "messages": messages, **body}, model=model)


def header(ctx: RequestContext) -> str | None:
    return dict(ctx.headers).get(HEADER)


def test_no_guardrails_configured_installs_no_hook() -> None:
    config = gateway_config(
        {"providers": {"mock": {"type": "mock"}}, "models": {"m": {"deployments": [{"provider": "mock"}]}}}
    )
    assert build_guardrails(config) is None


def test_a_model_naming_an_unknown_guardrail_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"models.m.guardrails: .nope. is not one of guardrails"):
        hook({"pii": {"type": "pii"}}, attached=["nope"])


async def test_input_redaction_rewrites_the_body_and_says_so() -> None:
    guard = hook({"pii-guard": {"type": "pii", "action": "redact"}})
    ctx, call = context(), chat(f"my card is {CARD}, mail a@b.example")
    await guard.before(ctx, call)
    assert call.body["messages"][0]["content"] == "my card is [REDACTED:credit_card], mail [REDACTED:email]"
    assert header(ctx) == "pii-guard=redacted"


async def test_input_block_names_the_guardrail() -> None:
    guard = hook({"card-block": {"type": "pii", "entities": ["credit_card"], "action": "block"}})
    ctx = context()
    with pytest.raises(GuardrailBlocked) as raised:
        await guard.before(ctx, chat(f"card {CARD}"))
    assert raised.value.status_code == 400 and raised.value.guardrail == "card-block"
    assert "card-block" in raised.value.message and "credit_card" in raised.value.message
    assert CARD not in raised.value.message
    assert header(ctx) == "card-block=blocked"


async def test_tool_arguments_and_tool_results_are_checked() -> None:
    guard = hook({"pii": {"type": "pii", "action": "redact"}})
    messages = [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"function": {"arguments": '{"to": "a@b.io"}'}}],
        },
        {"role": "tool", "tool_call_id": "1", "content": f"card {CARD}"},
    ]
    call = Call(Operation.CHAT, {"model": "m", "messages": messages}, model="m")
    await guard.before(context(), call)
    assert messages[0]["tool_calls"][0]["function"]["arguments"] == '{"to": "[REDACTED:email]"}'  # type: ignore[index]
    assert messages[1]["content"] == "card [REDACTED:credit_card]"


async def test_anthropic_system_tool_use_and_tool_result() -> None:
    guard = hook({"pii": {"type": "pii", "action": "redact"}})
    body = {
        "model": "m",
        "system": [{"type": "text", "text": "agent mail ops@corp.example"}],
        "messages": [
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": "t", "name": "pay", "input": {"card": CARD}}],
            },
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": "t", "content": f"paid {CARD}"}],
            },
        ],
    }
    await guard.before(context(), Call(Operation.MESSAGES, body, model="m"))
    assert orjson.dumps(body).count(b"[REDACTED:") == 3 and CARD.encode() not in orjson.dumps(body)


@pytest.mark.parametrize(
    ("operation", "body"),
    [
        (
            Operation.RESPONSES,
            {"input": [{"role": "user", "content": [{"type": "input_text", "text": CARD}]}]},
        ),
        (Operation.RESPONSES, {"input": CARD, "instructions": CARD}),
        (Operation.COMPLETIONS, {"prompt": [CARD]}),
        (Operation.EMBEDDINGS, {"input": CARD}),
    ],
)
async def test_every_operation_input_is_checked(operation: Operation, body: dict[str, Any]) -> None:
    guard = hook({"pii": {"type": "pii", "action": "redact"}})
    body = {"model": "m", **body}
    await guard.before(context(), Call(operation, body, model="m"))
    assert CARD.encode() not in orjson.dumps(body)


async def test_only_attached_guardrails_run() -> None:
    guard = hook(
        {"pii": {"type": "pii", "action": "block"}, "loud": {"type": "words", "words": ["x"], "always": True}}
    )
    ctx = context()
    await guard.before(ctx, chat(f"card {CARD}", model="other"))
    assert header(ctx) == "loud=passed"


async def test_team_and_key_attach_guardrails() -> None:
    guard = hook({"team-words": {"type": "words", "words": ["secret"]}}, attached=[])
    team = Scope("team", "t1", guardrails=("team-words",))
    ctx = RequestContext("r", Principal("key", key_id="k", scopes=(Scope("key", "k"), team)), "test")
    with pytest.raises(GuardrailBlocked):
        await guard.before(ctx, chat("the SECRET plan", model="other"))


async def test_an_attached_but_unknown_guardrail_fails_closed() -> None:
    guard = hook({"pii": {"type": "pii"}}, attached=[])
    ctx = RequestContext(
        "r", Principal("key", key_id="k", scopes=(Scope("key", "k", guardrails=("gone",)),)), "t"
    )
    with pytest.raises(GuardrailUnavailable, match="'gone'"):
        await guard.before(ctx, chat("hi", model="other"))


class Broken(Exception):
    pass


async def test_a_check_that_cannot_run_blocks_by_default() -> None:
    guard = hook({"ext": {"type": "http", "url": "http://127.0.0.1:9/check", "timeout": 0.5}})
    await guard.start()
    try:
        ctx = context()
        with pytest.raises(GuardrailUnavailable) as raised:
            await guard.before(ctx, chat("hello"))
        assert raised.value.status_code == 503 and raised.value.guardrail == "ext"
        assert header(ctx) == "ext=failed"
    finally:
        await guard.aclose()


async def test_on_error_allow_lets_the_request_through() -> None:
    guard = hook(
        {"ext": {"type": "http", "url": "http://127.0.0.1:9/check", "timeout": 0.5, "on_error": "allow"}}
    )
    await guard.start()
    try:
        ctx = context()
        assert await guard.before(ctx, chat("hello")) is None
        assert header(ctx) == "ext=skipped"
    finally:
        await guard.aclose()


async def test_max_size_blocks_large_input() -> None:
    guard = hook({"size": {"type": "max_size", "max_chars": 10}})
    await guard.before(context(), chat("short"))
    with pytest.raises(GuardrailBlocked, match="over the limit of 10"):
        await guard.before(context(), chat("x" * 11))


def completion(content: str) -> dict[str, Any]:
    return {
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
        ]
    }


async def test_output_redaction_and_block_after() -> None:
    guard = hook({"out-pii": {"type": "pii", "stage": "output", "action": "redact"}})
    ctx, call = context(), chat("hi")
    await guard.before(ctx, call)
    value = await guard.after(ctx, call, completion(f"it is {CARD}"))
    assert value["choices"][0]["message"]["content"] == "it is [REDACTED:credit_card]"
    assert header(ctx) == "out-pii=redacted"
    blocking = hook({"out": {"type": "secrets", "stage": "output"}})
    await blocking.before(ctx := context(), call)
    with pytest.raises(GuardrailBlocked) as raised:
        await blocking.after(ctx, call, completion("key AKIAIOSFODNN7EXAMPLE"))
    assert raised.value.status_code == 403


async def test_json_schema_of_structured_output() -> None:
    guard = hook({"schema": {"type": "json_schema"}})
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    form = {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}
    ctx, call = context(), chat("hi", response_format=form)
    await guard.before(ctx, call)
    assert await guard.after(ctx, call, completion('{"n": 3}'))
    with pytest.raises(GuardrailBlocked, match=r"schema at n"):
        await guard.after(ctx, call, completion('{"n": "three"}'))
    with pytest.raises(GuardrailBlocked, match="not JSON"):
        await guard.after(ctx, call, completion("three"))
    plain = chat("hi")  # no structured output asked: nothing to validate
    await guard.before(ctx := context(), plain)
    assert await guard.after(ctx, plain, completion("three"))


async def stream_of(items: list[Any]) -> AsyncIterator[Any]:
    for item in items:
        yield item


async def run_stream(
    guard: Hook, call: Call, items: list[Any], ctx: RequestContext | None = None
) -> list[Any]:
    ctx = ctx or context()

    async def proceed() -> AsyncIterator[Any]:
        return stream_of(items)

    stream = await HookChain([guard]).stream(ctx, call, proceed, lambda _ctx: lambda _chunk: None)
    return [item async for item in stream]


def text_of(chunks: list[Any]) -> str:
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c.get("choices"))


async def test_a_streamed_card_split_over_three_chunks_is_redacted() -> None:
    guard = hook(
        {"out-pii": {"type": "pii", "stage": "output", "action": "redact", "stream_buffer_chars": 48}}
    )
    pieces = ["Your card 4111 11", "11 1111 11", "11 is on file. " + "More text follows here. " * 4]
    chunks = [chunk("m", {"role": "assistant", "content": ""})]
    chunks += [chunk("m", {"content": piece}) for piece in pieces] + [chunk("m", {}, finish="stop")]
    out = await run_stream(guard, chat("hi", stream=True), chunks)
    assert text_of(out) == "Your card [REDACTED:credit_card] is on file. " + "More text follows here. " * 4
    assert out[-1]["choices"][0]["finish_reason"] == "stop"


async def test_streamed_tool_call_arguments_are_redacted() -> None:
    guard = hook({"out-pii": {"type": "pii", "stage": "output", "action": "redact"}})
    head = {"index": 0, "id": "c", "type": "function", "function": {"name": "f", "arguments": ""}}
    chunks = [chunk("m", {"tool_calls": [head]})]
    chunks += [
        chunk("m", {"tool_calls": [{"index": 0, "function": {"arguments": p}}]})
        for p in ['{"m": "a@', 'b.io"}']
    ]
    chunks.append(chunk("m", {}, finish="tool_calls"))
    out = await run_stream(guard, chat("hi", stream=True), chunks)
    arguments = "".join(
        call["function"].get("arguments") or ""
        for c in out
        for call in c["choices"][0]["delta"].get("tool_calls") or ()
    )
    assert arguments == '{"m": "[REDACTED:email]"}'


async def test_a_block_mid_stream_raises_from_the_iterator() -> None:
    guard = hook(
        {"words": {"type": "words", "words": ["forbidden"], "stage": "output", "stream_buffer_chars": 24}}
    )
    chunks = [chunk("m", {"content": "fine text " * 5}), chunk("m", {"content": "then forbidden"})]
    ctx = context()
    with pytest.raises(GuardrailBlocked) as raised:
        await run_stream(guard, chat("hi", stream=True), chunks, ctx)
    assert raised.value.status_code == 403
    assert ctx.extras[EXTRAS_KEY].results == {"words": "blocked"}


async def test_anthropic_events_hold_text_until_the_block_stops() -> None:
    guard = hook({"out-pii": {"type": "pii", "stage": "output", "action": "redact"}})
    events = [
        event("message_start", {"message": {}}),
        event("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}),
        event("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": "card 41111111"}}),
        event("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": "11111111 ok"}}),
        event("content_block_stop", {"index": 0}),
        event("message_stop", {}),
    ]
    call = Call(Operation.MESSAGES, {"model": "m", "messages": []}, model="m", stream=True)
    out = await run_stream(guard, call, events)
    texts = [orjson.loads(d)["delta"]["text"] for n, d in out if n == "content_block_delta"]
    assert "".join(texts) == "card [REDACTED:credit_card] ok"
    assert [n for n, _ in out][-2:] == ["content_block_stop", "message_stop"]


def test_a_chain_without_stream_wrappers_asks_none() -> None:
    class Plain(Hook):
        pass

    assert not HookChain([Plain()])._wraps
    assert HookChain([Plain(), hook({"p": {"type": "pii"}})])._wraps == {1}


async def test_completions_stream_is_redacted() -> None:
    guard = hook({"out-pii": {"type": "pii", "stage": "output", "action": "redact"}})
    texts = ["card 4111 1111", " 1111 1111 ok"]
    chunks: list[Any] = [{"choices": [{"index": 0, "text": t, "finish_reason": None}]} for t in texts]
    chunks.append({"choices": [{"index": 0, "text": "", "finish_reason": "stop"}]})
    call = Call(Operation.COMPLETIONS, {"model": "m", "prompt": "x"}, model="m", stream=True)
    out = await run_stream(guard, call, chunks)
    assert "".join(c["choices"][0]["text"] for c in out) == "card [REDACTED:credit_card] ok"


async def test_responses_events_are_redacted_in_deltas_and_whole_texts() -> None:
    guard = hook({"out-pii": {"type": "pii", "stage": "output", "action": "redact"}})
    where = {"item_id": "msg_1", "output_index": 0, "content_index": 0}
    full = f"card {CARD} ok"
    events: list[Any] = [
        {"type": "response.output_text.delta", **where, "delta": full[:12], "sequence_number": 1},
        {"type": "response.output_text.delta", **where, "delta": full[12:], "sequence_number": 2},
        {"type": "response.output_text.done", **where, "text": full, "sequence_number": 3},
        {"type": "response.content_part.done", **where, "part": {"type": "output_text", "text": full}},
        {
            "type": "response.completed",
            "response": {"output": [{"type": "message", "content": [{"type": "output_text", "text": full}]}]},
        },
    ]
    call = Call(Operation.RESPONSES, {"model": "m", "input": "x"}, model="m", stream=True)
    out = await run_stream(guard, call, events)
    redacted = "card [REDACTED:credit_card] ok"
    assert "".join(e["delta"] for e in out if e["type"] == "response.output_text.delta") == redacted
    assert [e["type"] for e in out][-4:-1] == [
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
    ]
    assert CARD not in orjson.dumps(out).decode() and orjson.dumps(out).decode().count(redacted) == 4


async def test_a_streamed_structured_answer_is_validated_at_its_end() -> None:
    guard = hook({"schema": {"type": "json_schema"}})
    schema = {"type": "object", "required": ["n"]}
    form = {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}
    chunks = [chunk("m", {"content": '{"m": '}), chunk("m", {"content": "1}"}, finish="stop")]
    with pytest.raises(GuardrailBlocked, match="schema"):
        await run_stream(guard, chat("hi", response_format=form), chunks)
    good = [chunk("m", {"content": '{"n": '}), chunk("m", {"content": "1}"}, finish="stop")]
    assert len(await run_stream(guard, chat("hi", response_format=form), good)) == 2


async def test_closing_the_guarded_stream_closes_the_upstream() -> None:
    guard = hook({"out-pii": {"type": "pii", "stage": "output", "action": "redact", "always": True}})
    closed: list[bool] = []

    async def upstream() -> AsyncIterator[Any]:
        try:
            for n in range(100):
                yield chunk("m", {"content": f"piece {n} "})
        finally:
            closed.append(True)

    async def proceed() -> AsyncIterator[Any]:
        return upstream()

    stream = await HookChain([guard]).stream(
        context(), chat("hi", stream=True), proceed, lambda _ctx: lambda _chunk: None
    )
    await stream.__anext__()
    await stream.__anext__()
    await stream.aclose()  # type: ignore[attr-defined]
    assert closed == [True]
