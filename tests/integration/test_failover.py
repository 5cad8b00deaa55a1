"""Failover through a real gateway with the openai SDK: retries, their order and limits, fallbacks.

Each public model is a group of fake deployments tried in a fixed order (`routed.ordered`);
the fake counts what each deployment received, so the test sees the attempts themselves.
"""

from __future__ import annotations

import time
from typing import Any

import openai
import pytest

from tests.conftest import MASTER_KEY, GatewayFactory
from tests.fakes.openai import FakeOpenAI
from tests.fakes.server import FakeServer
from tests.gateway import UPSTREAM_CLIENT, GatewayProcess
from tests.integration.routed import HI, arrival_order, ordered, received, routed_config

MODELS = {
    "after-500": ordered("error-500", "upstream-ok"),
    "after-429": ordered("error-429", "upstream-ok"),
    "after-hang": ordered({"model": "hang", "timeout": 0.5}, "upstream-ok"),
    "after-reset": ordered("reset", "upstream-ok"),
    "flaky-one": ordered("flaky-2-503"),
    "rate-limited-one": ordered("flaky-1-429-300"),
    "bad-request": ordered("error-400", "upstream-ok"),
    "chain": ordered(
        "flaky-99-500-a",
        "flaky-99-500-b",
        "flaky-99-500-c",
        routing={"max_attempts": 2},
        fallbacks=["chain-b", "chain-c"],
    ),
    "chain-b": ordered("flaky-99-502-d", routing={"max_attempts": 1}),
    "chain-c": ordered("upstream-ok"),
    "small": ordered("error-context", routing={"max_attempts": 3}, context_window_fallbacks=["big"]),
    "big": ordered("upstream-big"),
    "lonely": ordered("flaky-99-500-e", routing={"max_attempts": 1}, fallbacks=["chain-c"]),
    "rescue": ordered("upstream-rescue"),
    "no-retry": ordered("flaky-99-500-f", "upstream-ok"),
    "slowpoke": ordered({"model": "hang", "timeout": 10}, routing={"deadline": 1.0}),
    "doomed": ordered("flaky-99-500-g", "flaky-99-503-h", routing={"backoff_base": 0.05}),
}


@pytest.fixture(scope="module")
def gateway(fake_openai: tuple[FakeOpenAI, FakeServer], start_gateway: GatewayFactory) -> GatewayProcess:
    return start_gateway(routed_config(fake_openai[1].url, MODELS))


@pytest.fixture
def client(gateway: GatewayProcess) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=MASTER_KEY, max_retries=0, timeout=10)


def ask(client: openai.OpenAI, model: str, **kwargs: Any) -> Any:
    """A chat request for `model`; the raw response, for its headers."""
    return client.chat.completions.with_raw_response.create(model=model, messages=HI, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("model", "failing"),
    [
        ("after-500", "error-500"),
        ("after-429", "error-429"),
        ("after-reset", "reset"),
        ("after-hang", "hang"),
    ],
)
def test_a_failing_deployment_is_answered_for_by_the_next(
    client: openai.OpenAI, fake: FakeOpenAI, model: str, failing: str
) -> None:
    start = time.monotonic()
    raw = ask(client, model)
    elapsed = time.monotonic() - start
    assert raw.parse().choices[0].message.content == "echo: hi"
    assert raw.headers["x-llm-gateway-attempts"] == "2"
    assert raw.headers["x-llm-gateway-deployment"] == f"{model}/1:fake/upstream-ok"
    seen = received(fake)
    # The native client sends a request that a *reused* connection dropped before any byte of
    # an answer once more on a fresh connection (that is how an idle keep-alive closed by the
    # upstream looks); whether this one was reused depends on the tests before it.
    resent = failing == "reset" and UPSTREAM_CLIENT == "native" and seen[failing] == 2
    assert seen == {failing: 2 if resent else 1, "upstream-ok": 1}
    assert arrival_order(fake) == [failing, *([failing] if resent else []), "upstream-ok"]
    # Moving to another deployment does not wait (not even the 429's retry-after of 7 s);
    # the hung one costs exactly its 0.5 s timeout.
    assert elapsed < (2.0 if failing == "hang" else 1.0)
    if failing == "hang":
        assert elapsed >= 0.5


def test_a_lone_deployment_is_retried_with_backoff(client: openai.OpenAI, fake: FakeOpenAI) -> None:
    raw = ask(client, "flaky-one")
    assert raw.parse().choices[0].message.content == "echo: hi"
    assert raw.headers["x-llm-gateway-attempts"] == "3"
    assert received(fake) == {"flaky-2-503": 3}


def test_retry_after_ms_is_waited_for(client: openai.OpenAI, fake: FakeOpenAI) -> None:
    start = time.monotonic()
    raw = ask(client, "rate-limited-one")
    assert time.monotonic() - start >= 0.3
    assert raw.headers["x-llm-gateway-attempts"] == "2"
    assert received(fake) == {"flaky-1-429-300": 2}


def test_a_400_is_never_retried(client: openai.OpenAI, fake: FakeOpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        ask(client, "bad-request")
    assert caught.value.response.headers["x-llm-gateway-attempts"] == "1"
    assert received(fake) == {"error-400": 1}


def test_attempts_and_fallbacks_follow_the_configured_order_and_limits(
    client: openai.OpenAI, fake: FakeOpenAI
) -> None:
    raw = ask(client, "chain")
    assert raw.parse().choices[0].message.content == "echo: hi"
    # chain: max_attempts 2 of its three deployments; chain-b: one attempt; chain-c answers.
    assert arrival_order(fake) == ["flaky-99-500-a", "flaky-99-500-b", "flaky-99-502-d", "upstream-ok"]
    assert raw.headers["x-llm-gateway-fallback"] == "chain-c"
    assert raw.headers["x-llm-gateway-attempts"] == "4"
    assert raw.headers["x-llm-gateway-deployment"] == "chain-c/0:fake/upstream-ok"


def test_a_too_long_prompt_goes_straight_to_the_context_window_fallback(
    client: openai.OpenAI, fake: FakeOpenAI
) -> None:
    raw = ask(client, "small")
    assert raw.headers["x-llm-gateway-fallback"] == "big"
    assert arrival_order(fake) == ["error-context", "upstream-big"]


def test_a_client_can_send_its_own_fallbacks(client: openai.OpenAI, fake: FakeOpenAI) -> None:
    raw = ask(client, "lonely", extra_body={"fallbacks": ["rescue"]})
    assert raw.parse().choices[0].message.content == "echo: hi"
    assert raw.headers["x-llm-gateway-fallback"] == "rescue"
    # The client's list replaced the configured one, and no upstream saw the field.
    assert arrival_order(fake) == ["flaky-99-500-e", "upstream-rescue"]
    assert all("fallbacks" not in r.body for r in fake.requests)


def test_unknown_client_fallbacks_are_a_400(client: openai.OpenAI, fake: FakeOpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        ask(client, "lonely", extra_body={"fallbacks": ["no-such-model"]})
    assert caught.value.body["param"] == "fallbacks"  # type: ignore[index]
    with pytest.raises(openai.BadRequestError):
        ask(client, "lonely", extra_body={"fallbacks": "rescue"})
    assert fake.requests == []


def test_a_header_turns_retries_off(client: openai.OpenAI, fake: FakeOpenAI) -> None:
    with pytest.raises(openai.APIStatusError) as caught:
        ask(client, "no-retry", extra_headers={"x-llm-gateway-no-retry": "true"})
    assert caught.value.status_code == 502
    assert received(fake) == {"flaky-99-500-f": 1}


def test_the_request_deadline_is_kept(client: openai.OpenAI, fake: FakeOpenAI) -> None:
    start = time.monotonic()
    with pytest.raises(openai.APIStatusError) as caught:
        ask(client, "slowpoke")
    assert caught.value.status_code == 504
    assert 0.9 < time.monotonic() - start < 2.0


def test_when_nothing_can_answer_the_last_error_comes_back_promptly(
    client: openai.OpenAI, fake: FakeOpenAI
) -> None:
    start = time.monotonic()
    with pytest.raises(openai.APIStatusError) as caught:
        ask(client, "doomed")
    assert time.monotonic() - start < 2.0
    assert caught.value.response.headers["x-llm-gateway-attempts"] == "3"
    assert sum(received(fake).values()) == 3
