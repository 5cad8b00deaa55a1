"""Circuit breakers in a real gateway: open after failures or at once on 401, skipped while open,
probed and closed after the cooldown; `GET /admin/deployments`; and two gateways sharing one
Redis agreeing on an open circuit. (The schedule itself is unit-tested on a fake clock.)"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx2
import openai
import pytest

from tests.conftest import MASTER_KEY, GatewayFactory
from tests.fakes.openai import FakeOpenAI
from tests.fakes.server import FakeServer
from tests.gateway import GatewayProcess, free_port
from tests.integration.routed import HI, ordered, received, routed_config

AUTH = {"authorization": f"Bearer {MASTER_KEY}"}
COOLDOWN = 1.0
MODELS = {
    "tripping": ordered("flaky-99-500-t", "upstream-ok"),
    "recovering": ordered("flaky-2-500-r", "upstream-ok"),
    "bad-key": ordered("error-401", "upstream-ok"),
    "long-429": ordered("error-429", "upstream-ok"),
}


@pytest.fixture(scope="module")
def gateway(fake_openai: tuple[FakeOpenAI, FakeServer], start_gateway: GatewayFactory) -> GatewayProcess:
    breaker = {"failures": 2, "cooldown": COOLDOWN, "long_retry_after": 5}
    return start_gateway(routed_config(fake_openai[1].url, MODELS, routing={"breaker": breaker}))


def client_for(gateway: GatewayProcess) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=MASTER_KEY, max_retries=0, timeout=10)


def deployments(gateway: GatewayProcess) -> dict[str, dict[str, Any]]:
    response = httpx2.get(f"{gateway.url}/admin/deployments", headers=AUTH, timeout=5)
    assert response.status_code == 200, response.text
    return {row["deployment"]: row for row in response.json()["data"]}


def circuit(gateway: GatewayProcess, key: str) -> str:
    return str(deployments(gateway)[key]["circuit"])


def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def ask(gateway: GatewayProcess, model: str) -> Any:
    return client_for(gateway).chat.completions.with_raw_response.create(model=model, messages=HI)  # type: ignore[arg-type]


def test_failures_open_the_circuit_and_an_open_deployment_is_skipped(
    gateway: GatewayProcess, fake: FakeOpenAI
) -> None:
    key = "tripping/0:fake/flaky-99-500-t"
    for _ in range(2):
        assert ask(gateway, "tripping").headers["x-llm-gateway-attempts"] == "2"
    assert circuit(gateway, key) == "open"
    raw = ask(gateway, "tripping")
    assert raw.headers["x-llm-gateway-attempts"] == "1"  # straight to the healthy one
    assert received(fake) == {"flaky-99-500-t": 2, "upstream-ok": 3}
    row = deployments(gateway)[key]
    assert row["recent_error_rate"] == 1.0
    assert row["in_flight"] == 0


def test_after_the_cooldown_one_probe_closes_the_circuit(gateway: GatewayProcess, fake: FakeOpenAI) -> None:
    key = "recovering/0:fake/flaky-2-500-r"
    ask(gateway, "recovering")
    ask(gateway, "recovering")
    assert circuit(gateway, key) == "open"
    assert wait_for(lambda: circuit(gateway, key) == "half_open")
    raw = ask(gateway, "recovering")  # the probe: its third request, which succeeds
    assert raw.headers["x-llm-gateway-deployment"] == key
    assert circuit(gateway, key) == "closed"
    assert received(fake)["flaky-2-500-r"] == 3


def test_a_refused_key_opens_the_circuit_at_once(gateway: GatewayProcess, fake: FakeOpenAI) -> None:
    with pytest.raises(openai.AuthenticationError):
        ask(gateway, "bad-key")  # a 401 is not retried...
    assert circuit(gateway, "bad-key/0:fake/error-401") == "open"
    raw = ask(gateway, "bad-key")  # ...but nothing more is sent to that deployment
    assert raw.headers["x-llm-gateway-deployment"] == "bad-key/1:fake/upstream-ok"
    assert received(fake) == {"error-401": 1, "upstream-ok": 1}


def test_a_long_retry_after_opens_the_circuit_for_that_long(
    gateway: GatewayProcess, fake: FakeOpenAI
) -> None:
    ask(gateway, "long-429")  # retry-after: 7, over long_retry_after: 5
    row = deployments(gateway)["long-429/0:fake/error-429"]
    assert row["circuit"] == "open"
    assert 5.0 < row["open_for_s"] <= 7.0


def test_the_admin_api_needs_the_master_key(gateway: GatewayProcess) -> None:
    url = f"{gateway.url}/admin/deployments"
    assert httpx2.get(url, timeout=5).status_code == 401
    assert httpx2.get(url, headers={"authorization": "Bearer nope"}, timeout=5).status_code == 401
    rows = httpx2.get(url, headers=AUTH, timeout=5).json()["data"]
    fields = {"model", "deployment", "circuit", "in_flight", "ewma_latency_ms", "recent_error_rate"}
    assert fields <= set(rows[0])


def test_an_unreachable_redis_leaves_breakers_local(
    fake_openai: tuple[FakeOpenAI, FakeServer], start_gateway: GatewayFactory, fake: FakeOpenAI
) -> None:
    config = routed_config(
        fake_openai[1].url,
        {"alone": ordered("flaky-99-500-u", "upstream-ok")},
        routing={"breaker": {"failures": 1, "cooldown": 60}},
        redis_url=f"redis://127.0.0.1:{free_port()}/0",
    )
    gateway = start_gateway(config)
    assert ask(gateway, "alone").headers["x-llm-gateway-attempts"] == "2"
    assert circuit(gateway, "alone/0:fake/flaky-99-500-u") == "open"
    assert ask(gateway, "alone").headers["x-llm-gateway-attempts"] == "1"
    assert gateway.logged("circuit breakers are local")


@pytest.mark.redis
def test_gateways_sharing_redis_agree_on_an_open_circuit(
    redis_url: str,
    fake_openai: tuple[FakeOpenAI, FakeServer],
    start_gateway: GatewayFactory,
    fake: FakeOpenAI,
) -> None:
    models = {"shared": ordered("flaky-99-500-s", "upstream-ok")}
    breaker = {"failures": 1, "cooldown": 60}
    config = routed_config(
        fake_openai[1].url,
        models,
        routing={"breaker": breaker},
        redis_url=redis_url,
        redis_prefix=f"llm-gateway-test-{uuid.uuid4().hex}:",
    )
    first, second = start_gateway(config), start_gateway(config)
    key = "shared/0:fake/flaky-99-500-s"
    assert circuit(second, key) == "closed"

    assert ask(first, "shared").headers["x-llm-gateway-attempts"] == "2"  # opens it in `first`
    assert circuit(first, key) == "open"
    assert wait_for(lambda: circuit(second, key) == "open"), second.log()
    raw = ask(second, "shared")  # `second` never saw a failure, yet skips the deployment
    assert raw.headers["x-llm-gateway-attempts"] == "1"
    assert received(fake) == {"flaky-99-500-s": 1, "upstream-ok": 2}

    late = start_gateway(config)  # one started afterwards reads the open circuit at start-up
    assert circuit(late, key) == "open"
    assert 50 < deployments(late)[key]["open_for_s"] <= 60
