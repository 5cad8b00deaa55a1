"""Combining and enforcing system policies (services/policies.py), without a server."""

from __future__ import annotations

from typing import Any

import pytest

from llm_gateway.core.context import Call, Operation, Principal, RequestContext, Scope
from llm_gateway.core.errors import GatewayError
from llm_gateway.core.policy_config import Policy
from llm_gateway.services.policies import PolicyDenied, PolicyHook, PolicyViolation, combine, enforce


def policy(**fields: Any) -> Policy:
    return Policy.model_validate(fields)


def chat(**body: Any) -> Call:
    return Call(Operation.CHAT, {"messages": [{"role": "user", "content": "hi"}], **body}, model="m")


def test_combined_limits_are_the_tightest_and_the_most_specific_system_prompt_wins() -> None:
    rules = combine(
        [
            ("model", policy(max_tokens=100, temperature={"max": 1.5}, system_prompt={"content": "M"})),
            (
                "team",
                policy(max_tokens=50, temperature={"max": 0.5, "min": 0.1}, refused_params=["logprobs"]),
            ),
            ("key", policy(max_tokens=80, temperature={"max": 0.9}, system_prompt={"content": "K"})),
        ]
    )
    assert rules.max_tokens is not None and (rules.max_tokens.value, rules.max_tokens.policy) == (50, "team")
    assert rules.high["temperature"].policy == "team" and rules.low["temperature"].value == 0.1
    assert rules.system_prompt is not None and rules.system_prompt[1] == "key"
    assert rules.refused == {"logprobs": "team"}


@pytest.mark.parametrize(
    ("rules", "body", "error", "param"),
    [
        (policy(max_tokens=10), {"max_completion_tokens": 11}, PolicyViolation, "max_completion_tokens"),
        (policy(top_p={"min": 0.5}), {"top_p": 0.4}, PolicyViolation, "top_p"),
        (policy(refused_params=["n"]), {"n": 3}, PolicyViolation, "n"),
        (policy(models=["x*"]), {}, PolicyDenied, "model"),
        (
            policy(max_prompt_tokens=3),
            {"messages": [{"role": "user", "content": "a b c d e f g"}]},
            PolicyViolation,
            "messages",
        ),
    ],
)
def test_violations_name_the_policy_and_the_field(
    rules: Policy, body: dict[str, Any], error: type[GatewayError], param: str
) -> None:
    with pytest.raises(error) as refused:
        enforce(combine([("p", rules)]), chat(**body))
    assert refused.value.param == param and "'p'" in refused.value.message


def test_n_of_one_and_absent_parameters_pass() -> None:
    call = chat(n=1, logprobs=False)
    enforce(combine([("p", policy(refused_params=["n", "logprobs"], max_tokens=5))]), call)
    assert "max_tokens" not in call.body


def test_clamping_changes_only_what_a_clamping_policy_binds() -> None:
    call = chat(max_tokens=99, temperature=0.0)
    enforce(combine([("p", policy(max_tokens=10, temperature={"min": 0.2}, on_violation="clamp"))]), call)
    assert (call.body["max_tokens"], call.body["temperature"]) == (10, 0.2)
    unset = chat()
    enforce(combine([("p", policy(max_tokens=10, on_violation="clamp"))]), unset)
    assert unset.body["max_tokens"] == 10


@pytest.mark.parametrize(
    ("mode", "expected"),
    [("prepend", ["P", "S", "hi"]), ("append", ["S", "P", "hi"]), ("replace", ["P", "hi"])],
)
def test_the_system_prompt_on_chat_messages(mode: str, expected: list[str]) -> None:
    call = Call(
        Operation.CHAT, {"messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "hi"}]}
    )
    enforce(combine([("p", policy(system_prompt={"mode": mode, "content": "P"}))]), call)
    assert [m["content"] for m in call.body["messages"]] == expected


def test_the_system_prompt_on_anthropic_messages() -> None:
    blocks = Call(Operation.MESSAGES, {"system": [{"type": "text", "text": "S"}], "messages": []})
    enforce(combine([("p", policy(system_prompt={"mode": "append", "content": "P"}))]), blocks)
    assert blocks.body["system"] == [{"type": "text", "text": "S"}, {"type": "text", "text": "P"}]
    plain = Call(Operation.MESSAGES, {"system": "S", "messages": []})
    enforce(combine([("p", policy(system_prompt={"mode": "replace", "content": "P"}))]), plain)
    assert plain.body["system"] == "P"


def test_the_hook_layers_model_team_and_key_and_fails_closed_on_an_unknown_name() -> None:
    hook = PolicyHook({"m": policy(max_tokens=100), "t": policy(max_tokens=50)}, {"gpt-*": "m"})
    team = Scope("team", "t1", metadata={"policy": "t"})
    ctx = RequestContext("r", Principal("key", key_id="k", scopes=(team,)), "openai.chat")
    rules = hook.rules(ctx, Call(Operation.CHAT, {}, model="gpt-4o"))
    assert rules is not None and rules.max_tokens is not None and rules.max_tokens.policy == "t"
    assert (
        hook.rules(RequestContext("r", Principal("open"), "x"), Call(Operation.CHAT, {}, model="o")) is None
    )
    key = Scope("key", "k", metadata={"policy": "missing"})
    stranger = RequestContext("r", Principal("key", key_id="k", scopes=(key,)), "openai.chat")
    with pytest.raises(PolicyDenied):
        hook.rules(stranger, Call(Operation.CHAT, {}, model="o"))


def test_the_system_prompt_on_responses_instructions() -> None:
    call = Call(Operation.RESPONSES, {"input": "hi", "instructions": "Mine."})
    enforce(combine([("p", policy(system_prompt={"mode": "prepend", "content": "P"}))]), call)
    assert call.body["instructions"] == "P\n\nMine."
    bare = Call(Operation.RESPONSES, {"input": "hi"})
    enforce(combine([("p", policy(system_prompt={"mode": "append", "content": "P"}))]), bare)
    assert bare.body["instructions"] == "P"
