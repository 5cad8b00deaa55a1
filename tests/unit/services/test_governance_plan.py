"""The governance hook's per-principal plan: made once per principal and UTC day, made
again for a changed key or a new day (a new budget period), and not used where a scope
limits end users (their scopes depend on the body)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from llm_gateway.core.config import GatewayConfig
from llm_gateway.core.context import Call, Limits, Operation, Principal, RequestContext, Scope
from llm_gateway.core.governance_config import GovernanceSettings
from llm_gateway.services.costing import PricedCosting
from llm_gateway.services.governance import GovernanceHook
from llm_gateway.services.pricing import PriceBook
from llm_gateway.store.counters import LocalCounters
from tests.stubs import StubProvider, stub_catalog

PRICED = {"provider": "m", "pricing": {"input_per_mtok": 1.0, "output_per_mtok": 2.0}}
MODELS = {"m": {"deployments": [PRICED]}}
BUDGET = Limits(rpm=10, budget_usd=Decimal(5), budget_period="monthly")
KEY = Scope("key", "k1", "key", BUDGET)
TEAM = Scope("team", "t1", None, Limits(max_parallel=3))
IDLE = Scope("team", "t2", None, Limits())
PRINCIPAL = Principal("key", key_id="k1", team_id="t1", scopes=(KEY, TEAM))


class Clock:
    def __init__(self, at: datetime) -> None:
        self.now = at.timestamp()

    def __call__(self) -> float:
        return self.now


def hook(clock: Clock, **settings: object) -> GovernanceHook:
    upstream = StubProvider("m")
    catalog = stub_catalog([upstream], MODELS)
    config = GatewayConfig.model_validate({"providers": {"m": upstream.settings}, "models": MODELS})
    costing = PricedCosting(PriceBook(config), catalog)
    return GovernanceHook(GovernanceSettings(**settings), LocalCounters(clock), costing, catalog, clock=clock)


def chat(**body: object) -> Call:
    return Call(Operation.CHAT, {"model": "m", "messages": [{"role": "user", "content": "hi"}], **body}, "m")


def test_a_plan_is_made_once_per_principal_and_day() -> None:
    clock = Clock(datetime(2026, 1, 31, 23, 0, tzinfo=UTC))
    governance = hook(clock)
    plan = governance.plan(PRINCIPAL, clock())
    assert [s.id for s in plan.scopes] == ["k1", "t1"]
    assert plan.needs_tokens and plan.holds and not plan.limits_end_users
    assert plan.quotas[0].period == "m2026-01"
    clock.now += 60
    assert governance.plan(PRINCIPAL, clock()) is plan
    clock.now += 3600  # February, UTC: the budget's new period
    later = governance.plan(PRINCIPAL, clock())
    assert later is not plan and later.quotas[0].period == "m2026-02"


def test_a_changed_key_is_another_principal_with_its_own_plan() -> None:
    clock = Clock(datetime(2026, 3, 3, tzinfo=UTC))
    governance = hook(clock)
    plan = governance.plan(PRINCIPAL, clock())
    rekeyed = Scope("key", "k1", "key", Limits(rpm=1))
    changed = Principal("key", key_id="k1", team_id="t1", scopes=(rekeyed, IDLE))
    other = governance.plan(changed, clock())
    assert other is not plan and [s.id for s in other.scopes] == ["k1"]
    assert not other.needs_tokens and not other.holds
    assert other.quotas[0].rpm == 1


def test_configured_scopes_follow_the_principal_s_once_each() -> None:
    clock = Clock(datetime(2026, 3, 3, tzinfo=UTC))
    static = {"kind": "team", "id": "t1", "rpm": 99}  # already the principal's: counted once
    shared = {"kind": "team", "id": "all", "tpm": 1000}
    governance = hook(clock, scopes=[static, shared])
    plan = governance.plan(PRINCIPAL, clock())
    assert [(s.kind, s.id) for s in plan.scopes] == [("key", "k1"), ("team", "t1"), ("team", "all")]
    assert plan.scopes[1] is TEAM


async def test_end_user_scopes_are_worked_out_per_request() -> None:
    clock = Clock(datetime(2026, 3, 3, tzinfo=UTC))
    team = Scope("team", "t1", None, Limits(rpm=5), end_users=Limits(budget_usd=Decimal(1)))
    principal = Principal("key", key_id="k1", team_id="t1", scopes=(KEY, team))
    governance = hook(clock)
    assert governance.plan(principal, clock()).limits_end_users
    ctx = RequestContext("r", principal, "openai")
    for user in ("alice", "bob"):
        scopes = governance.scopes(ctx, chat(user=user))
        assert [s.id for s in scopes] == ["k1", "t1", f"t1:{user}"]
    assert [s.id for s in governance.scopes(ctx, chat())] == ["k1", "t1"]
    for user in ("alice", "bob"):
        ctx = RequestContext(f"r-{user}", principal, "openai")
        await governance.before(ctx, chat(user=user))
        admitted = ctx.extras["governance"]
        assert [q.scope for q in admitted.ask.quotas] == ["key:k1", "team:t1", f"user:t1:{user}"]
        assert admitted.ask.hold > 0
