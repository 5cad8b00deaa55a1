"""Hedged requests: a slow first attempt is raced by a second; the winner answers, the loser's
upstream connection is closed (the fake sees its handler cancelled)."""

from __future__ import annotations

import time
from collections.abc import Callable

import openai
import pytest

from tests.conftest import MASTER_KEY, GatewayFactory
from tests.fakes.openai import FakeOpenAI
from tests.fakes.server import FakeServer
from tests.gateway import GatewayProcess
from tests.integration.routed import HI, arrival_order, ordered, routed_config

MODELS = {
    "hedged": ordered("slow-3000", "upstream-fast", routing={"hedge_after_ms": 100}),
    "hedged-quick": ordered("upstream-ok", "upstream-other", routing={"hedge_after_ms": 1000}),
    "hedged-alone": ordered("slow-400", routing={"hedge_after_ms": 50}),
}


@pytest.fixture(scope="module")
def gateway(fake_openai: tuple[FakeOpenAI, FakeServer], start_gateway: GatewayFactory) -> GatewayProcess:
    return start_gateway(routed_config(fake_openai[1].url, MODELS))


@pytest.fixture
def client(gateway: GatewayProcess) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=MASTER_KEY, max_retries=0, timeout=10)


def wait_for(condition: Callable[[], bool], timeout: float = 2.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False


def test_the_hedge_wins_and_the_slow_attempt_is_cancelled(client: openai.OpenAI, fake: FakeOpenAI) -> None:
    start = time.monotonic()
    raw = client.chat.completions.with_raw_response.create(model="hedged", messages=HI)  # type: ignore[arg-type]
    elapsed = time.monotonic() - start
    assert raw.parse().choices[0].message.content == "echo: hi"
    assert elapsed < 1.5  # not the slow deployment's 3 s
    assert raw.headers["x-llm-gateway-hedged"] == "true"
    assert raw.headers["x-llm-gateway-attempts"] == "2"
    assert raw.headers["x-llm-gateway-deployment"] == "hedged/1:fake/upstream-fast"
    assert arrival_order(fake) == ["slow-3000", "upstream-fast"]
    assert wait_for(lambda: fake.cancelled == ["slow-3000"])
    assert fake.completed == ["upstream-fast"]


def test_a_hedged_stream_takes_the_first_first_token(client: openai.OpenAI, fake: FakeOpenAI) -> None:
    start = time.monotonic()
    raw = client.chat.completions.with_raw_response.create(model="hedged", messages=HI, stream=True)  # type: ignore[arg-type]
    text = "".join(c.choices[0].delta.content or "" for c in raw.parse() if c.choices)
    assert text == "echo: hi"
    assert time.monotonic() - start < 1.5
    assert raw.headers["x-llm-gateway-hedged"] == "true"
    assert wait_for(lambda: fake.cancelled == ["slow-3000"])


def test_a_fast_answer_is_not_hedged(client: openai.OpenAI, fake: FakeOpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(model="hedged-quick", messages=HI)  # type: ignore[arg-type]
    assert "x-llm-gateway-hedged" not in raw.headers
    assert len(fake.requests) == 1


def test_with_one_deployment_there_is_nothing_to_hedge_with(client: openai.OpenAI, fake: FakeOpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(model="hedged-alone", messages=HI)  # type: ignore[arg-type]
    assert raw.headers["x-llm-gateway-attempts"] == "1"
    assert fake.completed == ["slow-400"]
