"""What one request record and one attempt report add to the metrics, read back through
prometheus-client's own text parser."""

from __future__ import annotations

from decimal import Decimal
from types import SimpleNamespace

from prometheus_client.parser import text_string_to_metric_families

from llm_gateway.core.observability_config import MetricsSettings
from llm_gateway.observability.metrics import DeploymentState, Metrics, Probes
from llm_gateway.observability.record import RequestRecord, Tokens


def value(metrics: Metrics, name: str, **labels: str) -> float:
    text = metrics.render()[0].decode()
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
    )


def served(**fields: object) -> RequestRecord:
    base: dict[str, object] = {
        "time": 0.0,
        "request_id": "r",
        "method": "POST",
        "path": "/v1/chat/completions",
        "status": 200,
        "latency": 0.2,
        "key_id": "k1",
        "team": "t1",
        "front_door": "openai.chat",
        "model": "m",
        "deployment": "m/0:p/x",
        "provider": "p",
        "tokens": Tokens(prompt=10, completion=5, cached=2),
        "cost_usd": Decimal("0.25"),
        "upstream": 0.15,
        "overhead": 0.05,
    }
    return RequestRecord(**{**base, **fields})  # type: ignore[arg-type]


def test_a_request_counts_once_everywhere() -> None:
    metrics = Metrics()
    metrics.observe(served())
    metrics.observe(served(status=429, error_type="limit_exceeded", rejected_scope="team", cost_usd=None))
    assert value(metrics, "llm_gateway_requests_total", model="m", status_class="2xx") == 1
    assert value(metrics, "llm_gateway_requests_total", error_type="limit_exceeded") == 1
    assert value(metrics, "llm_gateway_rejections_total", reason="rate_limit", scope="team") == 1
    assert value(metrics, "llm_gateway_tokens_total", type="prompt") == 20
    assert value(metrics, "llm_gateway_tokens_total", type="cached_read") == 4
    assert value(metrics, "llm_gateway_cost_usd_total", model="m") == 0.25
    assert value(metrics, "llm_gateway_gateway_overhead_seconds_bucket", le="0.05") == 2
    assert value(metrics, "llm_gateway_gateway_overhead_seconds_bucket", le="0.025") == 0
    assert value(metrics, "llm_gateway_requests_total", key_id="k1") == 0  # not labelled by key


def test_cache_lookups_savings_and_guardrail_results_are_counted() -> None:
    metrics = Metrics()
    metrics.observe(
        served(cache="miss", cache_bytes=40, guardrails=(("pii", "redacted"), ("words", "passed")))
    )
    metrics.observe(served(cache="hit", cost_usd=Decimal(0), cache_saved_usd=Decimal("0.25"), cache_bytes=30))
    metrics.observe(served(cache="bypass"))
    metrics.observe(served(status=400, error_type="guardrail_blocked", guardrails=(("pii", "blocked"),)))
    for result in ("hit", "miss", "bypass"):
        assert value(metrics, "llm_gateway_response_cache_lookups_total", model="m", result=result) == 1
    assert value(metrics, "llm_gateway_response_cache_saved_usd_total", model="m") == 0.25
    assert value(metrics, "llm_gateway_response_cache_bytes_total", model="m", direction="written") == 40
    assert value(metrics, "llm_gateway_response_cache_bytes_total", model="m", direction="read") == 30
    assert value(metrics, "llm_gateway_guardrail_results_total", guardrail="pii", result="redacted") == 1
    assert value(metrics, "llm_gateway_guardrail_results_total", guardrail="pii", result="blocked") == 1
    assert value(metrics, "llm_gateway_guardrail_results_total", guardrail="words", result="passed") == 1


def test_per_key_labels_are_opt_in() -> None:
    metrics = Metrics(MetricsSettings(per_key_labels=True))
    metrics.observe(served())
    assert value(metrics, "llm_gateway_requests_total", key_id="k1", team="t1") == 1
    assert value(metrics, "llm_gateway_cost_usd_total", team="t1") == 0.25


def test_attempts_count_retries_hedges_and_hedge_wins() -> None:
    metrics = Metrics()

    def report(number: int, outcome: str, hedge: bool = False) -> SimpleNamespace:
        return SimpleNamespace(
            group="m", deployment="d", provider="p", number=number, outcome=outcome, hedge=hedge
        )

    for attempt in (
        report(1, "failed"),
        report(2, "answered"),
        report(3, "abandoned"),
        report(4, "answered", True),
    ):
        metrics.on_attempt(attempt)
    assert value(metrics, "llm_gateway_retries_total", model="m") == 2
    assert value(metrics, "llm_gateway_hedges_total", model="m") == 1
    assert value(metrics, "llm_gateway_hedge_wins_total", model="m") == 1
    assert value(metrics, "llm_gateway_upstream_attempts_total", outcome="answered") == 2


def test_gauges_are_read_when_scraped() -> None:
    state = {"queued": 3, "failures": 1, "hits": 5}
    probes = Probes(
        deployments=lambda: [DeploymentState("m", "d", "p", 2, 4)],
        spend_queue=lambda: (state["queued"], state["failures"], 0),
        key_lookups=lambda: (state["hits"], 0),
    )
    metrics = Metrics(probes=probes)
    assert value(metrics, "llm_gateway_deployment_circuit_state", deployment="d") == 2
    assert value(metrics, "llm_gateway_deployment_healthy", deployment="d") == 0
    assert value(metrics, "llm_gateway_deployment_in_flight", deployment="d") == 4
    assert value(metrics, "llm_gateway_spend_log_queue_depth") == 3
    state.update(failures=4, hits=9)
    assert value(metrics, "llm_gateway_spend_log_flush_failures_total") == 4
    assert value(metrics, "llm_gateway_key_cache_lookups_total", result="hit") == 9
