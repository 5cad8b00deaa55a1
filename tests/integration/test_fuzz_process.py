"""A smaller sample of tests/unit/api/test_fuzz.py against a real gateway process: what the
server underneath (uvicorn, httptools) adds must not turn a hostile body into a 5xx either."""

from __future__ import annotations

from collections.abc import Iterator

import httpx2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import GatewayFactory
from tests.gateway import GatewayProcess
from tests.unit.api.inprocess import MOCK, ROUTES
from tests.unit.api.test_fuzz import HOSTILE, check


@pytest.fixture(scope="module")
def gateway(start_gateway: GatewayFactory) -> GatewayProcess:
    return start_gateway(MOCK)


@pytest.fixture(scope="module")
def client(gateway: GatewayProcess) -> Iterator[httpx2.Client]:
    with httpx2.Client(base_url=gateway.url, timeout=10) as client:
        yield client


@pytest.mark.parametrize("path", list(ROUTES))
def test_hostile_bodies(client: httpx2.Client, path: str) -> None:
    for raw in HOSTILE:
        response = client.post(path, content=raw, headers={"content-type": "application/json"})
        check(path, "POST", response)


@settings(max_examples=150, deadline=None)
@given(path=st.sampled_from(list(ROUTES)), data=st.binary(max_size=200), json=st.booleans())
def test_arbitrary_bytes(gateway: GatewayProcess, path: str, data: bytes, json: bool) -> None:
    headers = {"content-type": "application/json" if json else "text/plain"}
    response = httpx2.post(f"{gateway.url}{path}", content=data, headers=headers, timeout=10)
    check(path, "POST", response)


def test_nothing_unhandled_was_logged(gateway: GatewayProcess, client: httpx2.Client) -> None:
    for raw in HOSTILE:
        client.post("/v1/chat/completions", content=raw, headers={"content-type": "application/json"})
    log = gateway.log()
    assert "Traceback" not in log and "unhandled error" not in log
