"""Who a request is for, and the end-user scopes a team's `end_user_budget_usd` makes."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from llm_gateway.core.context import Call, Limits, Operation, Principal, Scope
from llm_gateway.services.endusers import MAX_END_USER, end_user, end_user_scopes

PER_USER = Limits(budget_usd=Decimal("2"), budget_period="monthly")
TEAM = Scope("team", "t1", "Team One", Limits(rpm=10), end_users=PER_USER)
KEY = Principal("key", key_id="k1", team_id="t1", scopes=(Scope("key", "k1"), TEAM))


def call(body: dict[str, Any], operation: Operation = Operation.CHAT) -> Call:
    return Call(operation, body, model="m")


def test_the_end_user_is_the_user_field_or_anthropic_metadata() -> None:
    assert end_user(KEY, call({"user": "alice"})) == "alice"
    assert end_user(KEY, call({"metadata": {"user_id": "bob"}}, Operation.MESSAGES)) == "bob"
    assert end_user(KEY, call({"user": ""})) is None
    assert end_user(KEY, call({"user": 7})) is None
    assert end_user(KEY, call({"metadata": "x"})) is None
    assert end_user(KEY, call({"user": "x" * 1000})) == "x" * MAX_END_USER


def test_a_jwt_user_claim_wins_over_the_body() -> None:
    jwt = Principal("jwt", key_id="jwt:t1:carol", team_id="t1", metadata={"user": "carol"}, scopes=(TEAM,))
    assert end_user(jwt, call({"user": "mallory"})) == "carol"
    unnamed = Principal("jwt", key_id="jwt:t1", team_id="t1", scopes=(TEAM,))
    assert end_user(unnamed, call({"user": "dave"})) == "dave"


def test_a_scope_per_end_user_under_each_team_that_budgets_them() -> None:
    [scope] = end_user_scopes(KEY, call({"user": "alice"}))
    assert (scope.kind, scope.id, scope.name, scope.limits) == ("user", "t1:alice", "alice", PER_USER)
    assert end_user_scopes(KEY, call({})) == ()
    [tagged] = end_user_scopes(KEY, call({"user": "a:b%c"}))
    assert (tagged.id, tagged.name) == ("t1:a%3Ab%25c", "a:b%c")  # a user cannot mimic another's keys
    plain = Principal("key", key_id="k2", scopes=(Scope("team", "t2", None, Limits(rpm=5)),))
    assert end_user_scopes(plain, call({"user": "alice"})) == ()
