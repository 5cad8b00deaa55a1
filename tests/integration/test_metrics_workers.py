"""`serve --workers 2`: whichever worker answers `/metrics` reports both workers' counts
(prometheus-client's multiprocess mode, its folder made fresh by the CLI)."""

from __future__ import annotations

import httpx2 as httpx

from tests.conftest import MASTER_KEY, GatewayFactory, openai_config
from tests.fakes.openai import FakeOpenAI
from tests.fakes.server import FakeServer
from tests.integration.observed import log_lines, scrape, total

REQUESTS = 60


def test_metrics_sum_every_worker(
    fake_openai: tuple[FakeOpenAI, FakeServer], start_gateway: GatewayFactory, redis_url: str
) -> None:
    _, server = fake_openai
    # Several workers with a master key need shared counters (redis_url), or serve refuses.
    config = openai_config(
        server.url,
        {"gpt-test": "upstream-gpt"},
        master_key=MASTER_KEY,
        redis_url=redis_url,
        redis_prefix="llm-gateway-test-metrics:",
    )
    config["server"] = {"workers": 2}
    gateway = start_gateway(config)
    body = {"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}]}
    headers = {"authorization": f"Bearer {MASTER_KEY}", "connection": "close"}
    for _ in range(REQUESTS):  # a new connection each: the kernel spreads them over both workers
        response = httpx.post(f"{gateway.url}/v1/chat/completions", json=body, headers=headers, timeout=10)
        assert response.status_code == 200
    served_by = {
        line["pid"]
        for line in log_lines(gateway)
        if line.get("logger") == "llm_gateway.access" and line.get("model") == "gpt-test"
    }
    assert len(served_by) == 2, "both workers should have served some requests"
    for _ in range(4):  # whichever worker answers the scrape
        text = scrape(gateway)
        assert total(text, "llm_gateway_requests_total", model="gpt-test", status_class="2xx") == REQUESTS
        assert total(text, "llm_gateway_request_duration_seconds_count", model="gpt-test") == REQUESTS
        assert total(text, "llm_gateway_upstream_attempts_total", outcome="answered") == REQUESTS
