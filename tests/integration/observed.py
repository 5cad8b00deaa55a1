"""Reading what a gateway process tells its operator: access lines from its log, samples
from its `/metrics` (parsed with prometheus-client's own text parser)."""

from __future__ import annotations

import time
from typing import Any

import httpx2 as httpx
import orjson
from prometheus_client.parser import text_string_to_metric_families

from tests.gateway import GatewayProcess


def log_lines(gateway: GatewayProcess) -> list[dict[str, Any]]:
    lines = []
    for line in gateway.log().splitlines():
        if line.startswith("{"):
            try:
                lines.append(orjson.loads(line))
            except orjson.JSONDecodeError:
                continue
    return lines


def access_line(gateway: GatewayProcess, request_id: str, timeout: float = 5.0) -> dict[str, Any]:
    """The access line of one request (the log is written by a thread: wait for it)."""
    deadline = time.monotonic() + timeout
    while True:
        for line in log_lines(gateway):
            if line.get("logger") == "llm_gateway.access" and line.get("request_id") == request_id:
                return line
        if time.monotonic() > deadline:
            raise AssertionError(f"no access line for request {request_id}:\n{gateway.log()[-3000:]}")
        time.sleep(0.05)


def scrape(gateway: GatewayProcess, token: str | None = None) -> str:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    response = httpx.get(f"{gateway.url}/metrics", headers=headers, timeout=10)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return response.text


def samples(text: str) -> list[tuple[str, dict[str, str], float]]:
    return [
        (sample.name, dict(sample.labels), sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    ]


def total(text: str, name: str, **labels: str) -> float:
    """The sum of every sample called `name` whose labels include `labels`."""
    return sum(
        value
        for sample, found, value in samples(text)
        if sample == name and all(found.get(k) == v for k, v in labels.items())
    )
