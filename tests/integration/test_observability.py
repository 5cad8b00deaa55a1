"""The access log and `/metrics` of a real gateway process, driven with the openai SDK:
one access line per request with the fields docs/observability.md lists, and exact
Prometheus counts after known traffic, read with prometheus-client's text parser."""

from __future__ import annotations

import re
import uuid
from decimal import Decimal
from typing import Any

import httpx2 as httpx
import openai
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import MASTER_KEY, GatewayFactory, openai_config
from tests.fakes.openai import FakeOpenAI
from tests.fakes.server import FakeServer
from tests.gateway import ROOT, GatewayProcess
from tests.integration.observed import access_line, scrape, total

HI = [{"role": "user", "content": "hi there"}]
PRICING = {"input_per_mtok": 1, "output_per_mtok": 2}
METRICS_TOKEN = "metrics-scrape-token-0123456789"


def config(upstream_url: str, **extra: Any) -> dict[str, Any]:
    data = openai_config(upstream_url, {"gpt-test": "upstream-gpt"}, master_key=MASTER_KEY, **extra)
    data["models"]["gpt-test"]["deployments"][0]["pricing"] = PRICING
    data["models"]["flaky"] = {
        "deployments": [{"provider": "fake", "model": "error-500"}],
        "routing": {"max_attempts": 1},
        "fallbacks": ["gpt-test"],
    }
    return data


@pytest.fixture(scope="module")
def gateway(fake_openai: tuple[FakeOpenAI, FakeServer], start_gateway: GatewayFactory) -> GatewayProcess:
    _, server = fake_openai
    return start_gateway(config(server.url, metrics={"token": METRICS_TOKEN}))


def sdk(gateway: GatewayProcess, key: str = MASTER_KEY) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=key, max_retries=0, timeout=10)


def rid() -> str:
    return f"obs-{uuid.uuid4().hex}"


def test_a_success_has_one_complete_access_line(gateway: GatewayProcess) -> None:
    request_id = rid()
    with sdk(gateway) as client:
        reply = client.chat.completions.create(
            model="gpt-test", messages=HI, user="end-user-7", extra_headers={"x-request-id": request_id}
        )
    line = access_line(gateway, request_id)
    assert reply.usage is not None
    assert line["status"] == 200 and line["error_type"] is None
    assert (line["method"], line["path"]) == ("POST", "/v1/chat/completions")
    assert line["front_door"] == "openai.chat"
    assert (line["key_id"], line["key_name"], line["end_user"]) == ("master", "master", "end-user-7")
    assert (line["model"], line["provider"], line["attempts"]) == ("gpt-test", "fake", 1)
    assert line["deployment"] == "gpt-test/0:fake/upstream-gpt"
    assert line["fallback"] is None and line["hedged"] is False
    assert line["prompt_tokens"] == reply.usage.prompt_tokens
    assert line["completion_tokens"] == reply.usage.completion_tokens
    expected = (Decimal(reply.usage.prompt_tokens) + 2 * Decimal(reply.usage.completion_tokens)) / 10**6
    assert Decimal(line["cost_usd"]) == expected and line["unpriced"] is False
    assert line["stream"] is False and line["ttft_ms"] is None
    assert 0 < line["upstream_ms"] <= line["latency_ms"]
    assert line["overhead_ms"] == pytest.approx(line["latency_ms"] - line["upstream_ms"], abs=0.01)
    assert "hi there" not in gateway.log()  # never a prompt
    assert line["trace_id"] is None  # no tracer configured


def test_a_stream_has_its_time_to_first_token(gateway: GatewayProcess) -> None:
    request_id = rid()
    with sdk(gateway) as client:
        chunks = list(
            client.chat.completions.create(
                model="gpt-test",
                messages=HI,
                stream=True,
                stream_options={"include_usage": True},
                extra_headers={"x-request-id": request_id},
            )
        )
    usage = chunks[-1].usage
    assert usage is not None
    line = access_line(gateway, request_id)
    assert line["status"] == 200 and line["stream"] is True
    assert line["completion_tokens"] == usage.completion_tokens
    assert 0 < line["ttft_ms"] <= line["latency_ms"]
    assert line["upstream_ms"] is not None


def test_an_upstream_failure_served_by_a_fallback(gateway: GatewayProcess) -> None:
    request_id = rid()
    with sdk(gateway) as client:
        client.chat.completions.create(model="flaky", messages=HI, extra_headers={"x-request-id": request_id})
    line = access_line(gateway, request_id)
    assert line["status"] == 200 and line["error_type"] is None
    assert (line["model"], line["fallback"], line["attempts"]) == ("flaky", "gpt-test", 2)


def test_a_refused_key_is_logged_without_the_key(gateway: GatewayProcess) -> None:
    request_id = rid()
    bad = "sk-gw-" + "q" * 43
    with sdk(gateway, bad) as client, pytest.raises(openai.AuthenticationError):
        client.chat.completions.create(
            model="gpt-test", messages=HI, extra_headers={"x-request-id": request_id}
        )
    line = access_line(gateway, request_id)
    assert (line["status"], line["error_type"], line["key_id"], line["model"]) == (
        401,
        "authentication_failed",
        None,
        None,
    )
    assert bad not in gateway.log()


def test_requests_the_middleware_refuses_are_logged_too(gateway: GatewayProcess) -> None:
    request_id = rid()
    response = httpx.post(
        f"{gateway.url}/v1/nowhere", headers={"x-request-id": request_id, "authorization": "Bearer x"}
    )
    assert response.status_code == 404
    line = access_line(gateway, request_id)
    assert (line["status"], line["error_type"], line["path"]) == (404, "not_found", "/v1/nowhere")


def test_metrics_need_the_token(gateway: GatewayProcess) -> None:
    assert httpx.get(f"{gateway.url}/metrics").status_code == 401
    wrong = httpx.get(f"{gateway.url}/metrics", headers={"authorization": "Bearer nope"})
    assert wrong.status_code == 401 and METRICS_TOKEN not in wrong.text
    assert "llm_gateway_requests_total" in scrape(gateway, METRICS_TOKEN)


def test_metrics_count_known_traffic_exactly(
    fake_openai: tuple[FakeOpenAI, FakeServer], start_gateway: GatewayFactory
) -> None:
    _, server = fake_openai
    gateway = start_gateway(config(server.url))
    usages = []
    with sdk(gateway) as client:
        for _ in range(3):
            usages.append(client.chat.completions.create(model="gpt-test", messages=HI).usage)
        options = {"include_usage": True}
        stream = client.chat.completions.create(
            model="gpt-test", messages=HI, stream=True, stream_options=options
        )
        usages.append(list(stream)[-1].usage)
        fallback_usage = client.chat.completions.create(model="flaky", messages=HI).usage
    with sdk(gateway, "sk-gw-" + "z" * 43) as bad:
        for _ in range(2):
            with pytest.raises(openai.AuthenticationError):
                bad.chat.completions.create(model="gpt-test", messages=HI)
    text = scrape(gateway)
    ok = {"model": "gpt-test", "provider": "fake", "front_door": "openai.chat", "status_class": "2xx"}
    assert total(text, "llm_gateway_requests_total", **ok) == 4
    assert total(text, "llm_gateway_requests_total", model="flaky", status_class="2xx") == 1
    refused = {"error_type": "authentication_failed", "status_class": "4xx"}
    assert total(text, "llm_gateway_requests_total", **refused) == 2
    assert all(usages) and fallback_usage is not None
    prompt = sum(u.prompt_tokens for u in usages if u)
    completion = sum(u.completion_tokens for u in usages if u)
    assert total(text, "llm_gateway_tokens_total", model="gpt-test", type="prompt") == prompt
    assert total(text, "llm_gateway_tokens_total", model="gpt-test", type="completion") == completion
    assert total(text, "llm_gateway_tokens_total", model="flaky") == fallback_usage.total_tokens
    assert total(text, "llm_gateway_fallbacks_total", model="flaky", fallback="gpt-test") == 1
    assert total(text, "llm_gateway_upstream_attempts_total", outcome="failed") == 1
    assert total(text, "llm_gateway_upstream_attempts_total", outcome="answered") == 5
    assert total(text, "llm_gateway_request_duration_seconds_count", model="gpt-test") == 4
    assert total(text, "llm_gateway_time_to_first_token_seconds_count", model="gpt-test") == 1
    assert total(text, "llm_gateway_gateway_overhead_seconds_count", front_door="openai.chat") == 5
    assert total(text, "llm_gateway_upstream_duration_seconds_count") == 5
    assert total(text, "llm_gateway_in_flight_requests") == 1  # this scrape
    assert total(text, "llm_gateway_key_cache_lookups_total", result="miss") == 2
    cost = total(text, "llm_gateway_cost_usd_total", model="gpt-test")
    assert cost == pytest.approx((prompt + 2 * completion) / 10**6)
    assert total(text, "llm_gateway_deployment_healthy", model="gpt-test") == 1
    assert total(text, "llm_gateway_spend_log_queue_depth") >= 0


def test_metrics_off_means_no_endpoint(
    fake_openai: tuple[FakeOpenAI, FakeServer], start_gateway: GatewayFactory
) -> None:
    _, server = fake_openai
    gateway = start_gateway(config(server.url, metrics={"enabled": False}))
    assert httpx.get(f"{gateway.url}/metrics").status_code == 404
    request_id = rid()
    with sdk(gateway) as client:
        client.chat.completions.create(
            model="gpt-test", messages=HI, extra_headers={"x-request-id": request_id}
        )
    assert access_line(gateway, request_id)["status"] == 200


def test_every_metric_the_dashboard_queries_exists(gateway: GatewayProcess) -> None:
    dashboard = orjson.loads((ROOT / "deploy" / "grafana" / "llm-gateway.json").read_bytes())
    queried = {
        name
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in re.findall(r"\bllm_gateway_[a-z_]+", target["expr"])
    }
    assert len(queried) >= 15
    with sdk(gateway) as client:
        client.chat.completions.create(model="gpt-test", messages=HI)
        list(client.chat.completions.create(model="gpt-test", messages=HI, stream=True))
    exposed = set()
    for family in text_string_to_metric_families(scrape(gateway, METRICS_TOKEN)):
        exposed.update(family.name + suffix for suffix in ("", "_total", "_bucket", "_sum", "_count"))
        exposed.update(sample.name for sample in family.samples)
    assert queried <= exposed, f"queried but not exposed: {sorted(queried - exposed)}"


def test_a_rate_limited_key_counts_as_a_rejection_by_its_scope(gateway: GatewayProcess) -> None:
    admin = {"authorization": f"Bearer {MASTER_KEY}"}
    created = httpx.post(f"{gateway.url}/admin/keys", json={"name": "limited", "rpm": 1}, headers=admin)
    assert created.status_code == 201, created.text
    before = total(
        scrape(gateway, METRICS_TOKEN), "llm_gateway_rejections_total", reason="rate_limit", scope="key"
    )
    with sdk(gateway, created.json()["key"]) as client:
        client.chat.completions.create(model="gpt-test", messages=HI)
        with pytest.raises(openai.RateLimitError):
            client.chat.completions.create(model="gpt-test", messages=HI)
    text = scrape(gateway, METRICS_TOKEN)
    assert total(text, "llm_gateway_rejections_total", reason="rate_limit", scope="key") == before + 1
