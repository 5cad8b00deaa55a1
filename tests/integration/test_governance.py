"""Limits, budgets and the spend log on real gateway processes sharing one Redis.

Scopes are attached by the config (`governance.scopes`: every request is bound by them),
standing in for virtual keys, which arrive with the keys store. Counters are read from
outside through `RedisCounters.standing`, on Redis's own clock."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx2
import orjson
import pytest
import yaml

from llm_gateway.store.counters import Quota, Standing
from llm_gateway.store.redis_counters import RedisCounters
from tests.conftest import UPSTREAM_KEY, GatewayFactory, openai_config
from tests.fakes.openai import FakeOpenAI
from tests.fakes.server import FakeServer
from tests.gateway import GatewayProcess, free_port, run_cli

pytestmark = pytest.mark.redis

SECRET_PROMPT = "purple-elephant-7731"
BODY = {"model": "gpt-test", "messages": [{"role": "user", "content": SECRET_PROMPT}]}
Start = Callable[..., list[GatewayProcess]]


@pytest.fixture
def prefix() -> str:
    return f"itest-{uuid.uuid4().hex[:8]}:"


@pytest.fixture
def gateways(fake_openai: tuple[FakeOpenAI, FakeServer], redis_url: str, prefix: str) -> Iterator[Start]:
    """Start `count` gateways on one config (shared Redis, this test's key prefix); all are
    stopped when the test ends."""
    started: list[GatewayProcess] = []

    def start(
        scope: dict[str, Any], models: dict[str, Any] | None = None, count: int = 2, **governance: Any
    ) -> list[GatewayProcess]:
        config = governed(fake_openai[1].url, scope, models, **governance)
        config.update(redis_url=redis_url, redis_prefix=prefix)
        for _ in range(count):
            started.append(GatewayProcess(config).start())
        return started[-count:]

    yield start
    for gateway in started:
        gateway.stop()


def governed(
    upstream: str, scope: dict[str, Any], models: dict[str, Any] | None = None, **governance: Any
) -> dict[str, Any]:
    """A config whose every request is bound by `scope`; `models` maps public names to the
    fake's behaviours, or to `{"model": ..., **deployment keys}`."""
    models = models or {"gpt-test": "upstream-gpt"}
    config = openai_config(upstream, {})
    for name, spec in models.items():
        deployment = {"provider": "fake", **(spec if isinstance(spec, dict) else {"model": spec})}
        config["models"][name] = {"deployments": [deployment]}
    config["governance"] = {"scopes": [scope], "lease_ttl": 2, **governance}
    config["routing"] = {"max_attempts": 1}
    return config


async def standing(redis_url: str, prefix: str, scope: str, **quota: Any) -> Standing:
    counters = RedisCounters(redis_url, prefix)
    try:
        return await counters.standing(Quota(scope, **quota))
    finally:
        await counters.aclose()


async def until_parallel(redis_url: str, prefix: str, scope: str, expected: int, within: float = 3.0) -> None:
    deadline = time.monotonic() + within
    while True:
        running = (await standing(redis_url, prefix, scope)).parallel
        if running == expected or time.monotonic() > deadline:
            assert running == expected, f"{running} slot(s) held in {scope}, expected {expected}"
            return
        await asyncio.sleep(0.05)


def chat_url(gateway: GatewayProcess) -> str:
    return f"{gateway.url}/v1/chat/completions"


async def test_rpm_holds_exactly_across_two_instances(gateways: Start) -> None:
    a, b = gateways({"id": "rpm", "rpm": 30})
    async with httpx2.AsyncClient(timeout=20) as client:
        responses = await asyncio.gather(
            *(client.post(chat_url((a, b)[i % 2]), json=BODY) for i in range(80))
        )
    assert Counter(r.status_code for r in responses) == {200: 30, 429: 50}
    ok = next(r for r in responses if r.status_code == 200)
    assert ok.headers["x-ratelimit-limit-requests"] == "30"
    refused = next(r for r in responses if r.status_code == 429)
    assert refused.json()["error"]["code"] == "rate_limit_exceeded"
    assert 50 <= int(refused.headers["retry-after"]) <= 60
    assert refused.headers["x-ratelimit-remaining-requests"] == "0"
    assert refused.headers["x-ratelimit-reset-requests"].endswith("s")


async def test_a_budget_cannot_be_overrun_by_concurrency(
    gateways: Start, redis_url: str, prefix: str
) -> None:
    """Each request holds its worst case ($0.001: 1000 completion tokens at $1/M) while it
    runs for a second; a budget of $0.005 admits five of fifty sent at once over two instances."""
    priced = {"model": "slow-1000", "pricing": {"input_per_mtok": 0, "output_per_mtok": 1.0}}
    a, b = gateways({"id": "budget", "name": "Budgeted", "budget_usd": "0.005"}, {"gpt-test": priced})
    body = {**BODY, "max_tokens": 1000}
    async with httpx2.AsyncClient(timeout=20) as client:
        responses = await asyncio.gather(
            *(client.post(chat_url((a, b)[i % 2]), json=body) for i in range(50))
        )
    assert Counter(r.status_code for r in responses) == {200: 5, 402: 45}
    refused = next(r for r in responses if r.status_code == 402).json()["error"]
    assert refused["code"] == "budget_exceeded" and "team 'Budgeted'" in refused["message"]
    ok = next(r for r in responses if r.status_code == 200)
    assert float(ok.headers["x-llm-gateway-budget-remaining-usd"]) >= 0
    await asyncio.sleep(0.3)  # the settlements
    spent = await standing(redis_url, prefix, "team:budget", budget=5_000_000)
    assert spent.held == 0 and 0 < spent.spent <= 5_000_000


async def test_parallel_slots_return_to_zero_on_every_path(
    gateways: Start, redis_url: str, prefix: str
) -> None:
    models = {
        "gpt-test": "upstream-gpt",
        "bad": "error-500",
        "hang": {"model": "hang", "timeout": 0.5},
        "hang-long": {"model": "hang", "timeout": 30},
        "drip": "drip-50",
    }
    a, b = gateways({"id": "slots", "max_parallel": 2}, models)
    scope = "team:slots"
    async with httpx2.AsyncClient(timeout=10) as client:
        assert (await client.post(chat_url(a), json=BODY)).status_code == 200
        streamed = {**BODY, "stream": True}
        async with client.stream("POST", chat_url(b), json=streamed) as response:
            assert [line async for line in response.aiter_lines() if line][-1] == "data: [DONE]"
        await until_parallel(redis_url, prefix, scope, 0)
        assert (await client.post(chat_url(a), json={**BODY, "model": "bad"})).status_code == 502
        assert (await client.post(chat_url(b), json={**BODY, "model": "hang"})).status_code == 504
        await until_parallel(redis_url, prefix, scope, 0)
        async with client.stream("POST", chat_url(a), json={**streamed, "model": "drip"}) as response:
            lines = response.aiter_lines()
            assert (await anext(lines)).startswith("data: ")
            await until_parallel(redis_url, prefix, scope, 1)
        await until_parallel(redis_url, prefix, scope, 0)  # the client left mid-stream
        with pytest.raises(httpx2.TimeoutException):
            await client.post(chat_url(b), json={**BODY, "model": "hang-long"}, timeout=0.3)
        await until_parallel(redis_url, prefix, scope, 0)  # the client gave up waiting

        hanging = [
            asyncio.ensure_future(client.post(chat_url(g), json={**BODY, "model": "hang-long"}))
            for g in (a, b)
        ]
        await until_parallel(redis_url, prefix, scope, 2)
        refused = await client.post(chat_url(a), json=BODY)
        assert refused.status_code == 429 and "parallel" in refused.json()["error"]["message"]
        assert b.process is not None
        b.process.kill()  # b dies holding a slot: its lease expires (lease_ttl 2s) unrenewed
        await until_parallel(redis_url, prefix, scope, 1, within=6.0)
        assert (await client.post(chat_url(a), json=BODY)).status_code == 200
        hanging[0].cancel()
        await asyncio.gather(*hanging, return_exceptions=True)
        await until_parallel(redis_url, prefix, scope, 0)


def test_the_spend_log_is_flushed_on_shutdown(
    fake_openai: tuple[FakeOpenAI, FakeServer], start_gateway: GatewayFactory, tmp_path: Path
) -> None:
    path = tmp_path / "spend.jsonl"
    models = {
        "gpt-test": {"model": "upstream-gpt", "pricing": {"input_per_mtok": 1, "output_per_mtok": 2}},
        "bad": "error-500",
    }
    config = governed(fake_openai[1].url, {"id": "t", "rpm": 100}, models)
    config["governance"]["spend_log"] = {"sink": "jsonl", "path": str(path), "flush_interval": 60}
    gateway = start_gateway(config)
    assert httpx2.post(chat_url(gateway), json={**BODY, "user": "alice"}, timeout=10).status_code == 200
    streamed = {**BODY, "stream": True, "stream_options": {"include_usage": True}}
    with httpx2.stream("POST", chat_url(gateway), json=streamed, timeout=10) as response:
        assert list(response.iter_lines())
    assert httpx2.post(chat_url(gateway), json={**BODY, "model": "bad"}, timeout=10).status_code == 502
    assert not path.exists() or path.read_bytes() == b""  # nothing written on the hot path
    gateway.stop()
    text = path.read_text()
    assert SECRET_PROMPT not in text and UPSTREAM_KEY not in text
    plain, stream, failed = (orjson.loads(line) for line in text.splitlines())
    assert (plain["end_user"], plain["status"], plain["stream"]) == ("alice", 200, False)
    assert plain["cost_usd"] is not None and plain["completion_tokens"] > 0 and plain["ttft_s"] is None
    assert stream["stream"] and stream["ttft_s"] is not None and stream["cost_usd"] is not None
    assert (failed["status"], failed["error"], failed["cost_usd"]) == (502, "AllDeploymentsFailed", None)


@pytest.mark.parametrize("mode", ["fail_closed", "fail_open"])
def test_redis_unreachable(
    fake_openai: tuple[FakeOpenAI, FakeServer], start_gateway: GatewayFactory, mode: str
) -> None:
    config = governed(fake_openai[1].url, {"id": "t", "rpm": 5}, on_store_error=mode)
    config["redis_url"] = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    gateway = start_gateway(config)
    ready = httpx2.get(f"{gateway.url}/ready", timeout=10)
    answer = httpx2.post(chat_url(gateway), json=BODY, timeout=10)
    if mode == "fail_closed":
        assert ready.status_code == 503 and "failing closed" in ready.json()["checks"]["governance"]
        assert answer.status_code == 503 and answer.json()["error"]["code"] == "governance_unavailable"
    else:
        assert ready.status_code == 200 and "failing open" in ready.json()["checks"]["governance"]
        assert answer.status_code == 200
    assert gateway.logged("governance store unreachable")


def test_several_workers_without_redis_are_refused(
    tmp_path: Path, fake_openai: tuple[FakeOpenAI, FakeServer]
) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(governed(fake_openai[1].url, {"id": "t", "rpm": 5})))
    for command in (["serve", "--workers", "2"], ["check-config"]):
        if command[0] == "check-config":
            data = yaml.safe_load(path.read_text())
            data["server"] = {"workers": 3}
            path.write_text(yaml.safe_dump(data))
        result = run_cli(*command, "--config", str(path))
        assert result.returncode == 2, result.stderr
        assert "redis_url" in result.stderr and "Traceback" not in result.stderr
