"""Streaming failover: retried only before the first chunk; after it, an error event, never a hang."""

from __future__ import annotations

import time

import openai
import pytest

from tests.conftest import MASTER_KEY, GatewayFactory
from tests.fakes.openai import FakeOpenAI
from tests.fakes.server import FakeServer
from tests.gateway import GatewayProcess
from tests.integration.routed import HI, arrival_order, ordered, received, routed_config

MODELS = {
    "reset-first": ordered("reset", "upstream-ok"),
    "500-first": ordered("error-500", "upstream-ok"),
    "cut": ordered("cut-3", "upstream-ok"),
    "midstream": ordered("midstream-error", "upstream-ok"),
    "stalls": ordered("drip-3000", "upstream-ok", routing={"stream_idle_timeout": 0.3}),
    "slow-start": ordered("slow-3000", "upstream-ok", routing={"stream_idle_timeout": 0.3}),
    "never": ordered({"model": "hang", "timeout": 30}, routing={"deadline": 1.0}),
}


@pytest.fixture(scope="module")
def gateway(fake_openai: tuple[FakeOpenAI, FakeServer], start_gateway: GatewayFactory) -> GatewayProcess:
    return start_gateway(routed_config(fake_openai[1].url, MODELS))


@pytest.fixture
def client(gateway: GatewayProcess) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=MASTER_KEY, max_retries=0, timeout=10)


def stream_text(client: openai.OpenAI, model: str) -> tuple[str, dict[str, str]]:
    raw = client.chat.completions.with_raw_response.create(model=model, messages=HI, stream=True)  # type: ignore[arg-type]
    text = "".join(c.choices[0].delta.content or "" for c in raw.parse() if c.choices)
    return text, dict(raw.headers)


def wait_for(condition: object, timeout: float = 3.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return True
        time.sleep(0.02)
    return False


@pytest.mark.parametrize(("model", "failing"), [("reset-first", "reset"), ("500-first", "error-500")])
def test_a_failure_before_the_first_chunk_is_retried(
    client: openai.OpenAI, fake: FakeOpenAI, model: str, failing: str
) -> None:
    text, headers = stream_text(client, model)
    assert text == "echo: hi"
    assert headers["x-llm-gateway-attempts"] == "2"
    assert arrival_order(fake) == [failing, "upstream-ok"]


@pytest.mark.parametrize(("model", "failing"), [("cut", "cut-3"), ("midstream", "midstream-error")])
def test_a_failure_after_the_first_chunk_ends_the_stream_with_an_error_event(
    client: openai.OpenAI, fake: FakeOpenAI, model: str, failing: str
) -> None:
    stream = client.chat.completions.create(model=model, messages=HI, stream=True)  # type: ignore[arg-type]
    chunks = []
    start = time.monotonic()
    with pytest.raises(openai.APIError):
        for chunk in stream:
            chunks.append(chunk)
    assert time.monotonic() - start < 3.0
    assert chunks  # the client had its first chunks: no retry could take them back
    assert received(fake) == {failing: 1}


def test_a_stalled_stream_is_ended_not_left_hanging(client: openai.OpenAI, fake: FakeOpenAI) -> None:
    stream = client.chat.completions.create(model="stalls", messages=HI, stream=True)  # type: ignore[arg-type]
    start = time.monotonic()
    with pytest.raises(openai.APIError, match="stalled"):
        for _ in stream:
            pass
    assert time.monotonic() - start < 2.0
    assert received(fake) == {"drip-3000": 1}
    assert wait_for(lambda: "drip-3000" in fake.cancelled)  # the upstream connection was closed


def test_a_slow_first_token_counts_as_a_stall_and_is_retried(client: openai.OpenAI, fake: FakeOpenAI) -> None:
    start = time.monotonic()
    text, headers = stream_text(client, "slow-start")
    assert text == "echo: hi"
    assert time.monotonic() - start < 2.0
    assert headers["x-llm-gateway-deployment"] == "slow-start/1:fake/upstream-ok"
    assert wait_for(lambda: "slow-3000" in fake.cancelled)


def test_a_stream_that_never_starts_fails_at_the_deadline(client: openai.OpenAI, fake: FakeOpenAI) -> None:
    start = time.monotonic()
    with pytest.raises(openai.APIStatusError) as caught:
        stream_text(client, "never")
    assert caught.value.status_code == 504
    assert time.monotonic() - start < 2.5
