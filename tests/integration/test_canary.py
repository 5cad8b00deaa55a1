"""The canary: a provider key (and a header credential) planted in the config and echoed by
the upstream, a caller's virtual key, and a made-up virtual key, driven through every error
path (a bad key, upstream 401 and 500 answers echoing the provider's secrets, a timeout, a
body that is not JSON, streams that fail midway), are found in no log line, no `/metrics`
sample, no byte of the SQLite database and no response.

No fragment of 8 characters or more of any secret may appear: a key cut before it was
redacted would leave most of it behind.
"""

from __future__ import annotations

import time
from typing import Any

import httpx2 as httpx
import pytest

from tests.conftest import MASTER_KEY, GatewayFactory
from tests.fakes.openai import FakeOpenAI
from tests.fakes.raw import PLANTED_HEADER, PLANTED_KEY, RawServer
from tests.fakes.server import FakeServer
from tests.integration.observed import scrape

FRAGMENT = 8
MADE_UP_KEY = "sk-gw-canaryMadeUpKey4d9e1f0a7b3c5e2d8f6a9b1c"
RAW_MODELS = {
    "echo-json": "echo-m1",
    "echo-escaped": "echo-m2",
    "echo-text": "echo-471",
    "echo-stream": "echo-stream",
    "not-json": "not-json",
    "sse-cut": "sse-midstream-cut",
}
FAKE_MODELS = {"up-401": "error-401", "up-500": "error-500", "hang": "hang", "mid-error": "midstream-error"}


def leaks(text: str, secrets: tuple[str, ...]) -> list[str]:
    found = []
    for secret in secrets:
        for start in range(len(secret) - FRAGMENT + 1):
            if secret[start : start + FRAGMENT] in text:
                found.append(secret[start : start + FRAGMENT])
    return found


@pytest.fixture(scope="module")
def canary_gateway(
    raw_server: RawServer, fake_openai: tuple[FakeOpenAI, FakeServer], start_gateway: GatewayFactory
) -> Any:
    _, fake = fake_openai
    keyed = {"type": "openai", "api_key": PLANTED_KEY, "headers": {"x-cred": PLANTED_HEADER}, "timeout": 1}
    models: dict[str, Any] = {}
    for name, scenario in RAW_MODELS.items():
        models[name] = {"deployments": [{"provider": "raw", "model": f"scn-{scenario}"}]}
    for name, upstream in FAKE_MODELS.items():
        models[name] = {"deployments": [{"provider": "fake", "model": upstream}]}
    for group in models.values():
        group["routing"] = {"max_attempts": 1}
    config = {
        "providers": {
            "raw": {**keyed, "base_url": f"{raw_server.url}/v1"},
            "fake": {**keyed, "base_url": f"{fake.url}/v1"},
        },
        "models": models,
        "master_key": MASTER_KEY,
        "metrics": {"enabled": True},
    }
    return start_gateway(config)


def test_no_canary_anywhere(canary_gateway: Any) -> None:
    gateway = canary_gateway
    admin = {"authorization": f"Bearer {MASTER_KEY}"}
    created = httpx.post(f"{gateway.url}/admin/keys", json={"name": "canary"}, headers=admin, timeout=10)
    assert created.status_code == 201
    virtual_key = created.json()["key"]
    secrets = (PLANTED_KEY, PLANTED_HEADER, virtual_key, MADE_UP_KEY)
    seen: list[str] = []

    def call(key: str, model: str, stream: bool = False) -> httpx.Response:
        body = {"model": model, "messages": [{"role": "user", "content": "hi"}], "stream": stream}
        response = httpx.post(
            f"{gateway.url}/v1/chat/completions",
            json=body,
            headers={"authorization": f"Bearer {key}"},
            timeout=15,
        )
        seen.append(f"{response.status_code}\n{response.headers}\n{response.text}")
        return response

    assert call(MADE_UP_KEY, "echo-json").status_code == 401
    statuses = {model: call(virtual_key, model).status_code for model in [*RAW_MODELS, *FAKE_MODELS]}
    assert statuses["up-401"] == 401 and statuses["up-500"] == 502 and statuses["hang"] == 504
    assert statuses["not-json"] == 502
    for model in ("echo-stream", "sse-cut", "mid-error"):
        call(virtual_key, model, stream=True)
    seen.append(scrape(gateway))
    time.sleep(1.5)  # the spend log's flush interval
    gateway.stop()
    database = gateway.dir / "llm-gateway.db"
    assert database.exists()
    places = {
        "responses": "\n".join(seen),
        "log": gateway.log(),
        "database": b"".join(p.read_bytes() for p in gateway.dir.glob("llm-gateway.db*")).decode("latin-1"),
    }
    assert "llm_gateway.access" in places["log"]  # the access lines were there to be searched
    for place, text in places.items():
        assert not leaks(text, secrets), f"a secret reached the {place}"
