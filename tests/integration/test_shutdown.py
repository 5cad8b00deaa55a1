"""Graceful shutdown: SIGTERM lets in-flight requests and streams finish, then the process exits."""

from __future__ import annotations

import threading
import time

import httpx2

from tests.conftest import GatewayFactory, openai_config
from tests.fakes.openai import FakeOpenAI
from tests.fakes.server import FakeServer

HI = [{"role": "user", "content": "hi"}]


def test_sigterm_drains_in_flight_requests(
    fake_openai: tuple[FakeOpenAI, FakeServer], start_gateway: GatewayFactory
) -> None:
    config = openai_config(fake_openai[1].url, {"slow": "slow-800", "drip": "drip-20-50"})
    config["server"] = {"drain_timeout": 10}
    gateway = start_gateway(config)
    results: dict[str, object] = {}

    def plain() -> None:
        response = httpx2.post(
            f"{gateway.url}/v1/chat/completions", json={"model": "slow", "messages": HI}, timeout=10
        )
        results["plain"] = response.status_code

    def streamed() -> None:
        body = {"model": "drip", "messages": HI, "stream": True}
        with httpx2.stream("POST", f"{gateway.url}/v1/chat/completions", json=body, timeout=10) as response:
            results["stream"] = [line for line in response.iter_lines() if line]

    threads = [threading.Thread(target=plain), threading.Thread(target=streamed)]
    for thread in threads:
        thread.start()
    time.sleep(0.3)
    gateway.terminate()
    for thread in threads:
        thread.join(timeout=15)
    assert gateway.process is not None
    # uvicorn re-raises the SIGTERM it handled once shutdown is complete.
    assert gateway.process.wait(timeout=15) in (0, -15)
    assert "graceful shutdown exceeded" not in gateway.log()
    assert results["plain"] == 200
    stream = results["stream"]
    assert isinstance(stream, list) and stream[-1] == "data: [DONE]"
    assert len(stream) > 50
