"""A stream the drain cannot wait for ends with one error event, not a truncated body; a
second SIGTERM stops the drain at once."""

from __future__ import annotations

import threading
import time

import httpx2
import openai
import pytest

from tests.conftest import GatewayFactory, openai_config
from tests.fakes.openai import FakeOpenAI
from tests.fakes.server import FakeServer
from tests.gateway import GatewayProcess

HI = [{"role": "user", "content": "hi"}]


def start_stream(gateway: GatewayProcess, results: dict[str, object]) -> threading.Thread:
    def read() -> None:
        body = {"model": "drip", "messages": HI, "stream": True}
        lines: list[str] = []
        try:
            with httpx2.stream(
                "POST", f"{gateway.url}/v1/chat/completions", json=body, timeout=30
            ) as response:
                lines.extend(line for line in response.iter_lines() if line)
        except httpx2.HTTPError as exc:
            results["error"] = exc
        results["lines"] = lines

    thread = threading.Thread(target=read)
    thread.start()
    return thread


@pytest.fixture
def config(fake_openai: tuple[FakeOpenAI, FakeServer]) -> dict[str, object]:
    return openai_config(fake_openai[1].url, {"drip": "drip-50-2000"})


def assert_ended_with_shutdown_event(results: dict[str, object]) -> None:
    assert "error" not in results, results.get("error")
    lines = results["lines"]
    assert isinstance(lines, list) and len(lines) > 2
    assert '"shutting_down"' in lines[-1] and "the gateway is shutting down" in lines[-1]
    assert lines[-1].startswith("data: {")
    assert "data: [DONE]" not in lines


def test_a_stream_cut_by_the_drain_timeout_ends_with_an_error_event(
    config: dict[str, object], start_gateway: GatewayFactory
) -> None:
    gateway = start_gateway({**config, "server": {"drain_timeout": 1}})
    results: dict[str, object] = {}
    thread = start_stream(gateway, results)
    time.sleep(0.5)
    gateway.terminate()
    thread.join(timeout=15)
    assert gateway.process is not None and gateway.process.wait(timeout=15) in (0, -15)
    assert_ended_with_shutdown_event(results)


def test_a_second_sigterm_cuts_the_drain_short(
    config: dict[str, object], start_gateway: GatewayFactory
) -> None:
    gateway = start_gateway({**config, "server": {"drain_timeout": 60}})
    results: dict[str, object] = {}
    thread = start_stream(gateway, results)
    time.sleep(0.5)
    gateway.terminate()
    time.sleep(0.5)
    assert gateway.process is not None and gateway.process.poll() is None  # still draining
    stopped = time.monotonic()
    gateway.terminate()
    gateway.process.wait(timeout=10)
    assert time.monotonic() - stopped < 5
    thread.join(timeout=10)
    assert_ended_with_shutdown_event(results)


def test_the_openai_sdk_raises_on_the_shutdown_event(
    config: dict[str, object], start_gateway: GatewayFactory
) -> None:
    gateway = start_gateway({**config, "server": {"drain_timeout": 1}})
    with openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="none", max_retries=0, timeout=30) as client:
        stream = client.chat.completions.create(model="drip", messages=HI, stream=True)  # type: ignore[arg-type]
        next(iter(stream))
        gateway.terminate()
        with pytest.raises(openai.APIError, match="shutting down"):
            for _ in stream:
                pass
