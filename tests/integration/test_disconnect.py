"""A client that goes away cancels the upstream call at once, streaming or not."""

from __future__ import annotations

import time

import httpx2
import openai
import pytest

from tests.conftest import MASTER_KEY
from tests.fakes.openai import FakeOpenAI
from tests.gateway import GatewayProcess

HI = [{"role": "user", "content": "hi"}]


def wait_for(condition, timeout: float = 3.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False


@pytest.mark.parametrize("stream", [False, True])
def test_disconnect_while_waiting_cancels_upstream(
    openai_gateway: GatewayProcess, fake: FakeOpenAI, stream: bool
) -> None:
    impatient = openai.OpenAI(
        base_url=f"{openai_gateway.url}/v1", api_key=MASTER_KEY, max_retries=0, timeout=0.4
    )
    with pytest.raises(openai.APITimeoutError):
        impatient.chat.completions.create(model="hang-model", messages=HI, stream=stream)  # type: ignore[arg-type]
    assert wait_for(lambda: "hang" in fake.cancelled, timeout=1.0), "upstream request still running"


def test_disconnect_mid_stream_closes_upstream(openai_gateway: GatewayProcess, fake: FakeOpenAI) -> None:
    body = {"model": "drip-model", "messages": HI, "stream": True}
    headers = {"authorization": f"Bearer {MASTER_KEY}"}
    with httpx2.stream(
        "POST", f"{openai_gateway.url}/v1/chat/completions", json=body, headers=headers
    ) as response:
        assert response.status_code == 200
        lines = response.iter_lines()
        received = [next(lines) for _ in range(6)]
    assert any(line.startswith("data: ") for line in received)
    assert wait_for(lambda: "drip-50" in fake.cancelled, timeout=1.0), "upstream stream kept running"
    assert "drip-50" not in fake.completed
