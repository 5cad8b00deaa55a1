"""The governance hook (services/governance.py) over a pipeline of in-process stubs, with
in-process and Redis counters: on every exit path its slot and hold are released and its
counters come back to zero, the hold settles to the real cost, a refusal (its own or a later
hook's) consumes nothing, the headers name the tightest limit, and one spend row is queued
per admitted request."""

from __future__ import annotations

import asyncio
import random
import threading
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
import redis.asyncio as aioredis

from llm_gateway.core.config import GatewayConfig
from llm_gateway.core.context import Call, Limits, Operation, Principal, RequestContext, Scope
from llm_gateway.core.errors import (
    AllDeploymentsFailed,
    BudgetExceeded,
    GovernanceUnavailable,
    LimitExceeded,
    PermissionDenied,
    UpstreamConnectionError,
    UpstreamTimeout,
)
from llm_gateway.core.governance_config import GovernanceSettings
from llm_gateway.routing.executor import Executor
from llm_gateway.services import tokens
from llm_gateway.services.costing import PricedCosting
from llm_gateway.services.governance import GovernanceHook
from llm_gateway.services.hooks import HookChain
from llm_gateway.services.pipeline import Pipeline
from llm_gateway.services.pricing import PriceBook
from llm_gateway.services.quotas import quota_of
from llm_gateway.store.counters import Ask, Counters, LocalCounters, StoreUnavailable, Verdict
from llm_gateway.store.redis_counters import RedisCounters
from llm_gateway.store.spend import MemorySink, SpendLog
from tests.stubs import RecordingHook, StubProvider, chunk, no_sleep, stub_catalog

MODELS = {
    "m": {
        "deployments": [
            {"provider": "m", "model": "up-m", "pricing": {"input_per_mtok": 1.0, "output_per_mtok": 2.0}}
        ]
    },
    "free": {"deployments": [{"provider": "m", "model": "up-free"}]},
}
KEY = Scope("key", "k1", "ci key", Limits(rpm=100, tpm=100_000, max_parallel=2))
TEAM = Scope("team", "t1", None, Limits(rpm=50, max_parallel=5, budget_usd=Decimal("0.01")))
PRINCIPAL = Principal("key", key_id="k1", team_id="t1", scopes=(KEY, TEAM))


@dataclass
class Rig:
    hook: GovernanceHook
    counters: Counters
    pipeline: Pipeline
    upstream: StubProvider
    sink: MemorySink

    async def zero(self) -> None:
        """Every slot and hold back to zero, in every scope."""
        await self.counters.drain()
        for scope in PRINCIPAL.scopes:
            standing = await self.counters.standing(quota_of(scope, time.time()))
            assert (standing.parallel, standing.held) == (0, 0), scope

    async def standing(self, scope: Scope) -> Any:
        await self.counters.drain()
        return await self.counters.standing(quota_of(scope, time.time()))

    async def rows(self) -> list[Any]:
        assert self.hook.spend is not None
        await self.hook.spend.flush()
        return list(self.sink.rows)


@pytest.fixture(params=["local", "redis"])
async def counters(request: pytest.FixtureRequest) -> AsyncIterator[Counters]:
    if request.param == "local":
        yield LocalCounters()
        return
    url = request.getfixturevalue("redis_url")
    prefix = f"test-{uuid.uuid4().hex[:8]}:"
    made = RedisCounters(url, prefix)
    yield made
    await made.aclose()
    client = aioredis.from_url(url)
    keys = [key async for key in client.scan_iter(f"{prefix}*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


def build(counters: Counters, *later: Any, **settings: Any) -> Rig:
    upstream = StubProvider("m")
    catalog = stub_catalog([upstream], MODELS)
    config = GatewayConfig.model_validate({"providers": {"m": upstream.settings}, "models": MODELS})
    sink = MemorySink()
    hook = GovernanceHook(
        GovernanceSettings(**settings),
        counters,
        PricedCosting(PriceBook(config), catalog, default_max_output_tokens=1000),
        catalog,
        SpendLog(sink),
    )
    executor = Executor(random.Random(0), catalog=catalog, sleep=no_sleep)
    return Rig(hook, counters, Pipeline(catalog, executor, HookChain([hook, *later])), upstream, sink)


@pytest.fixture
def rig(counters: Counters) -> Rig:
    return build(counters)


def ctx(principal: Principal = PRINCIPAL) -> RequestContext:
    return RequestContext(f"req-{uuid.uuid4().hex[:6]}", principal, "test")


def chat(model: str = "m", *, stream: bool = False, **body: Any) -> Call:
    fields: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": "hi"}], **body}
    if stream:
        fields.update(stream=True, stream_options={"include_usage": True})
    return Call(Operation.CHAT, fields, model=model, stream=stream)


async def test_success_settles_to_the_real_cost(rig: Rig) -> None:
    context = ctx()
    await rig.pipeline.complete(context, chat(user="alice"))
    await rig.zero()
    team = await rig.standing(TEAM)
    assert team.spent == 7000  # 3 prompt tokens at $1/M + 2 completion at $2/M, in nano-dollars
    headers = dict(context.headers)
    assert headers["x-ratelimit-limit-requests"] == "50"  # the team's is the tightest
    assert headers["x-ratelimit-remaining-requests"] == "49"
    assert headers["x-ratelimit-reset-requests"] == "1m0s"
    assert headers["x-ratelimit-limit-tokens"] == "100000"
    assert Decimal(headers["x-llm-gateway-budget-remaining-usd"]) < Decimal("0.01")
    [row] = await rig.rows()
    assert (row.key_id, row.team_id, row.end_user, row.model) == ("k1", "t1", "alice", "m")
    assert (row.prompt_tokens, row.completion_tokens, row.cost_usd) == (3, 2, Decimal("0.000007"))
    assert (row.status, row.error, row.attempts, row.estimated) == (200, None, 1, False)
    assert row.deployment is not None and row.ttft_s is None and row.latency_s >= 0


async def test_success_streamed(rig: Rig) -> None:
    context = ctx()
    stream = await rig.pipeline.stream(context, chat(stream=True))
    assert (await rig.standing(KEY)).parallel == 1  # held while the stream runs
    _ = [item async for item in stream]
    await stream.aclose()  # type: ignore[attr-defined]
    await rig.zero()
    assert (await rig.standing(TEAM)).spent == 7000
    [row] = await rig.rows()
    assert row.stream and row.ttft_s is not None and row.status == 200


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(
    "error", [UpstreamConnectionError("down", provider="m"), UpstreamTimeout("slow", provider="m")]
)
async def test_an_upstream_error_releases(rig: Rig, stream: bool, error: Exception) -> None:
    rig.upstream.errors = [error] * 5
    with pytest.raises(AllDeploymentsFailed):
        if stream:
            await rig.pipeline.stream(ctx(), chat(stream=True))
        else:
            await rig.pipeline.complete(ctx(), chat())
    await rig.zero()
    assert (await rig.standing(TEAM)).spent == 0  # nothing served, nothing spent
    assert (await rig.standing(KEY)).tokens == 0
    [row] = await rig.rows()
    assert row.status == error.status_code and row.error == "AllDeploymentsFailed"  # type: ignore[attr-defined]
    assert row.cost_usd is None and row.attempts >= 1


async def test_a_client_gone_while_waiting(rig: Rig) -> None:
    rig.upstream.hang = True
    task = asyncio.ensure_future(rig.pipeline.complete(ctx(), chat()))
    await rig.upstream.waiting.wait()
    assert (await rig.standing(KEY)).parallel == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await rig.zero()
    [row] = await rig.rows()
    assert (row.status, row.error) == (499, "CancelledError")


async def test_a_stream_cancelled_midway(rig: Rig) -> None:
    stream = await rig.pipeline.stream(ctx(), chat(stream=True))
    await anext(stream)
    await stream.aclose()  # type: ignore[attr-defined]
    await rig.zero()
    [row] = await rig.rows()
    # What streamed before the cut is counted offline and charged, marked estimated.
    assert row.error == "CancelledError" and row.estimated
    assert row.cost_usd is not None and row.cost_usd > 0


async def test_a_stream_failing_midway(rig: Rig) -> None:
    cut = UpstreamConnectionError("cut", provider="m")
    rig.upstream.chunks = [chunk("up-m", {"role": "assistant", "content": "he"}), cut]
    stream = await rig.pipeline.stream(ctx(), chat(stream=True))
    await anext(stream)
    with pytest.raises(UpstreamConnectionError):
        await anext(stream)
    await stream.aclose()  # type: ignore[attr-defined]
    await rig.zero()


async def test_refused_by_a_later_hook_consumes_nothing(counters: Counters) -> None:
    rig = build(counters, RecordingHook("guard", refuse=PermissionDenied("no")))
    for _ in range(3):
        with pytest.raises(PermissionDenied):
            await rig.pipeline.complete(ctx(), chat())
    await rig.zero()
    key = await rig.standing(KEY)
    assert (key.requests, key.tokens) == (0, 0)
    assert len(await rig.rows()) == 3


async def test_max_parallel(rig: Rig) -> None:
    rig.upstream.hang = True
    tasks = [asyncio.ensure_future(rig.pipeline.complete(ctx(), chat())) for _ in range(2)]
    while len(rig.upstream.requests) < 2:
        await asyncio.sleep(0)
    context = ctx()
    with pytest.raises(LimitExceeded) as caught:
        await rig.pipeline.complete(context, chat())
    assert "parallel" in caught.value.message and "ci key" in caught.value.message
    assert caught.value.headers["retry-after"] == "1"
    assert dict(context.headers)["x-ratelimit-remaining-requests"] == "48"  # sent with the 429
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await rig.zero()
    assert len(await rig.rows()) == 2  # the refused one has no row


async def test_rpm_refusal_says_when_to_retry(counters: Counters) -> None:
    rig = build(counters)
    scope = Scope("key", "tight", None, Limits(rpm=2))
    principal = Principal("key", key_id="tight", scopes=(scope,))
    for _ in range(2):
        await rig.pipeline.complete(ctx(principal), chat())
    with pytest.raises(LimitExceeded) as caught:
        await rig.pipeline.complete(ctx(principal), chat())
    assert caught.value.code == "rate_limit_exceeded"
    assert 55 <= int(caught.value.headers["retry-after"]) <= 60
    assert (await rig.standing(scope)).requests == 2


async def test_budget_refusal_names_the_scope_and_its_reset(counters: Counters) -> None:
    rig = build(counters)
    team = Scope("team", "eng", "Engineering", Limits(budget_usd=Decimal("0.002"), budget_period="monthly"))
    principal = Principal("key", key_id="k", team_id="eng", scopes=(team,))
    # worst case: ~25 prompt tokens at $1/M + 1000 completion tokens at $2/M = about $0.002
    with pytest.raises(BudgetExceeded) as caught:
        await rig.pipeline.complete(ctx(principal), chat())
    error = caught.value
    assert (error.status_code, error.code) == (402, "budget_exceeded")
    assert "team 'Engineering'" in error.message and "resets at 20" in error.message
    await rig.pipeline.complete(ctx(principal), chat(max_tokens=10))  # a small one fits
    assert (await rig.standing(team)).spent == 7000


async def test_max_hold_caps_the_worst_case(counters: Counters) -> None:
    rig = build(counters)
    limits = Limits(budget_usd=Decimal("0.002"), max_hold_usd=Decimal("0.0001"))
    principal = Principal("key", key_id="k", scopes=(Scope("key", "capped", None, limits),))
    await rig.pipeline.complete(ctx(principal), chat())  # without the cap it would not fit


async def test_an_unpriced_model_under_a_budget(counters: Counters) -> None:
    with pytest.raises(PermissionDenied) as caught:
        await build(counters).pipeline.complete(ctx(), chat("free"))
    assert caught.value.code == "model_unpriced"
    allowing = build(counters, unpriced="allow")
    await allowing.pipeline.complete(ctx(), chat("free"))
    [row] = await allowing.rows()
    assert row.cost_usd is None  # unpriced, not free


async def test_ungoverned_requests_are_logged_and_not_counted(rig: Rig) -> None:
    context = ctx(Principal("master", key_id="master"))
    await rig.pipeline.complete(context, chat())
    assert context.headers == []
    [row] = await rig.rows()
    assert row.key_id == "master"


class Down(Counters):
    async def admit(self, ask: Ask) -> Verdict:
        raise StoreUnavailable("Redis: connection refused")

    def settle(self, ask: Ask, *, tokens: int | None, cost: int | None, refund: bool = False) -> None:
        raise AssertionError("nothing was admitted")

    async def standing(self, quota: Any) -> Any:
        raise StoreUnavailable("down")

    async def ping(self) -> None:
        raise StoreUnavailable("Redis: connection refused")


async def test_store_down_fails_closed() -> None:
    rig = build(Down())
    with pytest.raises(GovernanceUnavailable) as caught:
        await rig.pipeline.complete(ctx(), chat())
    assert caught.value.status_code == 503
    assert rig.upstream.requests == []
    ready, detail = await rig.hook.readiness()
    assert not ready and "failing closed" in detail


async def test_store_down_fails_open_when_asked() -> None:
    rig = build(Down(), on_store_error="fail_open")
    await rig.pipeline.complete(ctx(), chat())
    assert len(await rig.rows()) == 1
    ready, detail = await rig.hook.readiness()
    assert ready and "failing open" in detail


async def test_each_end_user_of_a_team_has_its_own_budget(counters: Counters) -> None:
    """Alice spends her end-user budget and is refused naming her scope and its reset; Bob,
    of the same team, is not; the team's own scope counts both."""
    rig = build(counters)
    per_user = Limits(budget_usd=Decimal("0.0001"), budget_period="daily")
    team = Scope("team", "app", "App", Limits(rpm=1000), end_users=per_user)
    principal = Principal("key", key_id="k", team_id="app", scopes=(team,))
    served = 0
    with pytest.raises(BudgetExceeded) as caught:
        for _ in range(30):
            await rig.pipeline.complete(ctx(principal), chat(user="alice", max_tokens=10))
            served += 1
    assert 1 <= served < 30
    assert "end user 'alice'" in caught.value.message and "resets at 20" in caught.value.message
    await rig.pipeline.complete(ctx(principal), chat(user="bob", max_tokens=10))
    alice = await rig.standing(Scope("user", "app:alice", "alice", per_user))
    bob = await rig.standing(Scope("user", "app:bob", "bob", per_user))
    assert (alice.spent, alice.held, bob.spent) == (served * 7000, 0, 7000)
    assert (await rig.standing(team)).requests == served + 1
    rows = await rig.rows()
    assert [row.end_user for row in rows] == ["alice"] * served + ["bob"]


async def test_a_jwt_user_claim_is_the_end_user_whatever_the_body_says(counters: Counters) -> None:
    rig = build(counters)
    per_user = Limits(budget_usd=Decimal("0.0001"))
    team = Scope("team", "app", "App", end_users=per_user)
    principal = Principal(
        "jwt", key_id="jwt:app:carol", team_id="app", metadata={"user": "carol"}, scopes=(team,)
    )
    await rig.pipeline.complete(ctx(principal), chat(user="mallory", max_tokens=10))
    carol = await rig.standing(Scope("user", "app:carol", "carol", per_user))
    assert carol.spent == 7000
    [row] = await rig.rows()
    assert row.end_user == "carol"


async def test_no_end_user_scope_without_a_team_that_budgets_them(rig: Rig) -> None:
    context = ctx()
    assert rig.hook.scopes(context, chat(user="alice")) == (KEY, TEAM)


async def test_a_budget_counts_the_prompt_with_a_tokenizer_built_off_the_event_loop(
    counters: Counters, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first counted request builds its encoding in a worker thread (half a second of
    CPU that would otherwise stall every request on the loop), then counts as usual."""
    built: list[int] = []
    original = tokens._build

    def recording(name: str) -> Any:
        built.append(threading.get_ident())
        return original(name)

    monkeypatch.setattr(tokens, "_build", recording)
    tokens.forget()
    try:
        rig = build(counters)
        await rig.pipeline.complete(ctx(), chat())
        await rig.zero()
        assert built and all(ident != threading.get_ident() for ident in built)
        [row] = await rig.rows()
        assert row.prompt_tokens == 3
    finally:
        tokens.forget()
