"""Allowed models: globs per scope, every scope must allow, the hook refuses with 403."""

from __future__ import annotations

import pytest

from llm_gateway.core.context import MASTER, Call, Operation, Principal, RequestContext, Scope
from llm_gateway.core.errors import PermissionDenied
from llm_gateway.services.access import ModelAccess, allows, may_use, usable


@pytest.mark.parametrize(
    ("patterns", "model", "allowed"),
    [
        (None, "anything", True),
        ([], "gpt-4o", False),
        (["gpt-4o*"], "gpt-4o", True),
        (["gpt-4o*"], "gpt-4o-mini", True),
        (["gpt-4o*"], "gpt-4", False),
        (["gpt-4o*"], "GPT-4o", False),
        (["claude-?"], "claude-3", True),
        (["claude-?"], "claude-35", False),
        (["[ab]*"], "beta", True),
        (["mock", "gpt-*"], "mock", True),
        (["mock"], "mock-2", False),
    ],
)
def test_globs(patterns: list[str] | None, model: str, allowed: bool) -> None:
    assert allows(patterns, model) is allowed


def principal(key: list[str] | None, team: list[str] | None) -> Principal:
    scopes = (Scope("key", "k1", "app", models=tuple(key) if key is not None else None),)
    scopes += (Scope("team", "t1", "team", models=tuple(team) if team is not None else None),)
    return Principal("key", key_id="k1", name="app", team_id="t1", scopes=scopes)


def test_a_key_can_only_narrow_its_team() -> None:
    caller = principal(["gpt-*"], ["gpt-4o*", "claude-*"])
    assert may_use(caller, "gpt-4o-mini")
    assert not may_use(caller, "gpt-3.5")  # the team does not allow it
    assert not may_use(caller, "claude-3")  # the key does not
    assert usable(caller, ["gpt-4o", "claude-3", "gpt-3.5", "gpt-4o-mini"]) == ["gpt-4o", "gpt-4o-mini"]
    assert usable(MASTER, ["a", "b"]) == ["a", "b"]


async def test_the_hook_refuses_the_model_and_the_callers_own_fallbacks() -> None:
    hook = ModelAccess()
    caller = principal(["gpt-*"], None)
    ctx = RequestContext("r1", caller, "openai.chat")
    assert await hook.before(ctx, Call(Operation.CHAT, {}, model="gpt-4o")) is None
    with pytest.raises(PermissionDenied) as refused:
        await hook.before(ctx, Call(Operation.CHAT, {}, model="claude-3"))
    assert refused.value.status_code == 403 and refused.value.code == "model_not_allowed"
    assert "claude-3" in refused.value.message and "key" in refused.value.message
    ctx.fallbacks = ["claude-3"]
    with pytest.raises(PermissionDenied):
        await hook.before(ctx, Call(Operation.CHAT, {}, model="gpt-4o"))
    master = RequestContext("r2", MASTER, "openai.chat", fallbacks=["x"])
    assert await hook.before(master, Call(Operation.CHAT, {}, model="claude-3")) is None
