"""The request log through a real gateway process: a request that failed over, and one that
fell back to another model, each listed under its key by `/admin/requests` and looked up by
id with every attempt, its deployment and outcome (the failing upstream is the fake OpenAI's
`error-500` model; the spend log goes to the gateway's SQLite database)."""

from __future__ import annotations

import time
from typing import Any

import httpx2 as httpx
import openai
import pytest

from tests.conftest import MASTER_KEY, GatewayFactory
from tests.fakes.openai import FakeOpenAI
from tests.fakes.server import FakeServer
from tests.gateway import GatewayProcess
from tests.integration.routed import HI, ordered, routed_config

ADMIN = {"authorization": f"Bearer {MASTER_KEY}"}
MODELS = {
    "log-after-500": ordered("error-500", "upstream-ok"),
    "log-lonely": ordered("error-500", routing={"max_attempts": 1}, fallbacks=["log-rescue"]),
    "log-rescue": ordered("upstream-rescue"),
}


@pytest.fixture(scope="module")
def gateway(
    fake_openai: tuple[FakeOpenAI, FakeServer],
    start_gateway: GatewayFactory,
    tmp_path_factory: pytest.TempPathFactory,
) -> GatewayProcess:
    config = routed_config(fake_openai[1].url, MODELS)
    config["database_url"] = f"sqlite:///{tmp_path_factory.mktemp('reqlog') / 'gateway.db'}"
    config["governance"] = {"spend_log": {"flush_interval": 0.1}}
    return start_gateway(config)


def admin(gateway: GatewayProcess, path: str, **params: Any) -> httpx.Response:
    return httpx.get(f"{gateway.url}/admin{path}", params=params, headers=ADMIN, timeout=10)


def new_key(gateway: GatewayProcess) -> dict[str, Any]:
    created = httpx.post(f"{gateway.url}/admin/keys", json={"name": "logged"}, headers=ADMIN, timeout=10)
    assert created.status_code == 201, created.text
    key: dict[str, Any] = created.json()
    return key


def ask(gateway: GatewayProcess, key: str, model: str, request_id: str) -> Any:
    """A chat request under `key`, retried while the new key reaches the key index."""
    with openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=key, max_retries=0, timeout=10) as client:
        deadline = time.monotonic() + 10
        while True:
            try:
                return client.chat.completions.with_raw_response.create(
                    model=model,
                    messages=HI,  # type: ignore[arg-type]
                    extra_headers={"x-request-id": request_id},
                )
            except openai.AuthenticationError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)


def logged(gateway: GatewayProcess, request_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 10
    while (found := admin(gateway, f"/requests/{request_id}")).status_code == 404:
        assert time.monotonic() < deadline, f"{request_id} never reached the request log"
        time.sleep(0.1)
    assert found.status_code == 200, found.text
    row: dict[str, Any] = found.json()
    return row


def test_a_failed_over_request_shows_both_attempts(gateway: GatewayProcess, fake: FakeOpenAI) -> None:
    key = new_key(gateway)
    raw = ask(gateway, key["key"], "log-after-500", "reqlog-failover-1")
    assert raw.headers["x-llm-gateway-attempts"] == "2"
    row = logged(gateway, "reqlog-failover-1")
    assert row["key_id"] == key["id"] and row["model"] == "log-after-500" and row["status"] == 200
    assert row["deployment"] == "log-after-500/1:fake/upstream-ok" and row["provider"] == "fake"
    assert row["attempt_count"] == 2 and row["error"] is None and row["prompt_tokens"] > 0
    assert row["latency_s"] > 0 and not row["stream"]
    failed, answered = row["attempts"]
    assert failed["deployment"] == "log-after-500/0:fake/error-500" and failed["outcome"] == "failed"
    # the gateway's own mapping of the upstream's 500, as a client of that attempt would see it
    assert failed["error"] == "UpstreamUnavailable" and failed["status"] == 502
    assert answered["deployment"] == row["deployment"] and answered["outcome"] == "answered"
    assert answered["error"] is None and answered["latency_s"] > 0
    listed = admin(gateway, "/requests", key_id=key["id"]).json()
    assert [item["request_id"] for item in listed["data"]] == ["reqlog-failover-1"]
    assert listed["data"][0]["attempts"] == row["attempts"] and listed["next_cursor"] is None


def test_a_fallback_names_each_model_its_attempts_served(gateway: GatewayProcess, fake: FakeOpenAI) -> None:
    key = new_key(gateway)
    ask(gateway, key["key"], "log-lonely", "reqlog-fallback-1")
    row = logged(gateway, "reqlog-fallback-1")
    assert row["fallback"] == "log-rescue" and row["status"] == 200
    assert [(a["group"], a["outcome"]) for a in row["attempts"]] == [
        ("log-lonely", "failed"),
        ("log-rescue", "answered"),
    ]
    other = admin(gateway, "/requests", key_id=key["id"], status=200).json()["data"]
    assert [item["request_id"] for item in other] == ["reqlog-fallback-1"]
    assert admin(gateway, "/requests", key_id=key["id"], status=500).json()["data"] == []
    assert admin(gateway, "/requests/reqlog-nobody").status_code == 404
    assert admin(gateway, "/requests", status="bad").status_code == 400


def test_a_streamed_failover_is_logged_when_the_stream_ends(
    gateway: GatewayProcess, fake: FakeOpenAI
) -> None:
    key = new_key(gateway)
    ask(gateway, key["key"], "log-lonely", "reqlog-warm-up")  # the new key has reached the index
    with openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=key["key"], max_retries=0, timeout=10) as client:
        stream = client.chat.completions.create(
            model="log-after-500",
            messages=HI,  # type: ignore[arg-type]
            stream=True,
            extra_headers={"x-request-id": "reqlog-stream-1"},
        )
        assert [chunk for chunk in stream]
    row = logged(gateway, "reqlog-stream-1")
    assert row["stream"] and row["ttft_s"] is not None
    assert [(a["outcome"], a["ttft_s"] is not None) for a in row["attempts"]] == [
        ("failed", False),
        ("answered", True),
    ]


SECRET = "sk-proj-abcdefghij0123456789"


def test_a_team_with_log_bodies_has_its_bodies_kept_redacted(
    gateway: GatewayProcess, fake: FakeOpenAI
) -> None:
    team = httpx.post(
        f"{gateway.url}/admin/teams",
        json={"name": "audited", "metadata": {"log_bodies": True}},
        headers=ADMIN,
        timeout=10,
    )
    assert team.status_code == 201, team.text
    made = httpx.post(
        f"{gateway.url}/admin/keys",
        json={"name": "member", "team_id": team.json()["id"]},
        headers=ADMIN,
        timeout=10,
    )
    assert made.status_code == 201, made.text
    key = made.json()
    with openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=key["key"], max_retries=0, timeout=10) as client:
        deadline = time.monotonic() + 10
        while True:
            try:
                client.chat.completions.create(
                    model="log-rescue",
                    messages=[{"role": "user", "content": f"use {SECRET} please"}],
                    extra_headers={"x-request-id": "reqlog-bodies-1"},
                )
                break
            except openai.AuthenticationError:
                assert time.monotonic() < deadline
                time.sleep(0.2)
    row = logged(gateway, "reqlog-bodies-1")
    assert row["team_id"] == team.json()["id"]
    assert row["request_body"] and "use [redacted] please" in row["request_body"]
    assert row["response_body"] and "echo" in row["response_body"]
    assert SECRET not in row["request_body"] and SECRET not in row["response_body"]
    other = logged(gateway, "reqlog-failover-1")  # a key without log_bodies: nothing kept
    assert other["request_body"] is None and other["response_body"] is None
