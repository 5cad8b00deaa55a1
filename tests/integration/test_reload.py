"""Hot reload against a real gateway process: SIGHUP and `POST /admin/config/reload` apply a
re-read config file atomically, under load, without failing a request; an invalid file or a
change that needs a restart changes nothing and says why (in the answer and in `/ready`);
a stream started before a reload finishes on the old config; limits are not reset."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Callable
from typing import Any

import httpx2 as httpx
import openai
import pytest
import yaml

from tests.conftest import MASTER_KEY, GatewayFactory, openai_config
from tests.fakes.openai import FakeOpenAI
from tests.fakes.server import FakeServer
from tests.gateway import GatewayProcess

ADMIN = {"authorization": f"Bearer {MASTER_KEY}"}


def config_for(server: FakeServer, **models: str) -> dict[str, Any]:
    return openai_config(server.url, models, master_key=MASTER_KEY, default_model="gpt-test")


def write(gateway: GatewayProcess, config: dict[str, Any] | str) -> None:
    assert gateway.config_path is not None
    text = config if isinstance(config, str) else yaml.safe_dump(config)
    tmp = gateway.config_path.with_suffix(".tmp")
    tmp.write_text(text)
    tmp.replace(gateway.config_path)  # atomic, as an operator's deploy tool would


def reload_by_post(gateway: GatewayProcess) -> httpx.Response:
    return httpx.post(f"{gateway.url}/admin/config/reload", headers=ADMIN, timeout=10)


def generation(gateway: GatewayProcess) -> int:
    state: int = httpx.get(f"{gateway.url}/admin/config", headers=ADMIN).json()["generation"]
    return state


def reload_by_sighup(gateway: GatewayProcess) -> None:
    before = generation(gateway)
    assert gateway.process is not None
    os.kill(gateway.process.pid, signal.SIGHUP)
    wait_for(lambda: generation(gateway) > before, "the SIGHUP reload")


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def models(gateway: GatewayProcess) -> set[str]:
    listed = httpx.get(f"{gateway.url}/v1/models", headers=ADMIN).json()["data"]
    return {model["id"] for model in listed}


@pytest.fixture
def upstream(fake_openai: tuple[FakeOpenAI, FakeServer]) -> FakeServer:
    fake, server = fake_openai
    fake.reset()
    return server


async def hammer(
    gateway: GatewayProcess, stop: asyncio.Event, workers: int = 6
) -> tuple[int, list[str], set[str]]:
    """Chat requests from `workers` concurrent clients until `stop`: (answered, failures, upstream models)."""
    failures: list[str] = []
    answered = 0
    served: set[str] = set()
    async with openai.AsyncOpenAI(base_url=f"{gateway.url}/v1", api_key=MASTER_KEY, max_retries=0) as client:

        async def loop() -> None:
            nonlocal answered
            while not stop.is_set():
                try:
                    answer = await client.chat.completions.create(
                        model="gpt-test", messages=[{"role": "user", "content": "hi"}]
                    )
                except openai.APIError as error:
                    failures.append(repr(error))
                else:
                    answered += 1
                    served.add(answer.model)

        await asyncio.gather(*(loop() for _ in range(workers)))
    return answered, failures, served


async def test_ten_reloads_under_load_fail_no_request(
    start_gateway: GatewayFactory, upstream: FakeServer
) -> None:
    first = config_for(upstream, **{"gpt-test": "upstream-a"})
    second = config_for(upstream, **{"gpt-test": "upstream-b", "extra": "upstream-extra"})
    gateway = start_gateway(first)
    stop = asyncio.Event()
    load = asyncio.create_task(hammer(gateway, stop))
    await asyncio.sleep(0.3)
    for round_ in range(10):
        write(gateway, second if round_ % 2 == 0 else first)
        if round_ % 2 == 0:
            response = await asyncio.to_thread(reload_by_post, gateway)
            assert response.status_code == 200, response.text
            assert response.json()["reloaded"] is True
        else:
            await asyncio.to_thread(reload_by_sighup, gateway)
        expected = {"gpt-test", "extra"} if round_ % 2 == 0 else {"gpt-test"}
        assert await asyncio.to_thread(models, gateway) == expected
        await asyncio.sleep(0.2)
    stop.set()
    answered, failures, served = await load
    assert failures == []
    assert answered > 50
    assert served == {"upstream-a", "upstream-b"}  # both configs really served traffic
    assert generation(gateway) == 11


def test_an_invalid_file_changes_nothing_and_says_why(
    start_gateway: GatewayFactory, upstream: FakeServer
) -> None:
    gateway = start_gateway(config_for(upstream, **{"gpt-test": "upstream-a"}))
    client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=MASTER_KEY, max_retries=0)
    bad = config_for(upstream, **{"gpt-test": "upstream-b"})
    bad["routing"] = {"max_attempts": -3}
    for broken in (bad, "providers: [unclosed", {"providers": {}, "models": {}}):
        write(gateway, broken)
        response = reload_by_post(gateway)
        assert response.status_code == 400
        error = response.json()["error"]
        assert error["code"] == "config_invalid" and "config error" in error["message"]
        ready = httpx.get(f"{gateway.url}/ready")
        assert ready.status_code == 200  # the old config still serves: not a reason to pull the instance
        assert "the last reload failed" in ready.json()["checks"]["config"]
        answer = client.chat.completions.create(
            model="gpt-test", messages=[{"role": "user", "content": "hi"}]
        )
        assert answer.model == "upstream-a"
    assert generation(gateway) == 1
    write(gateway, config_for(upstream, **{"gpt-test": "upstream-b"}))
    assert reload_by_post(gateway).status_code == 200
    assert httpx.get(f"{gateway.url}/ready").json()["checks"]["config"] == "generation 2"
    answer = client.chat.completions.create(model="gpt-test", messages=[{"role": "user", "content": "hi"}])
    assert answer.model == "upstream-b"


def test_a_failed_sighup_reload_is_logged_and_shown(
    start_gateway: GatewayFactory, upstream: FakeServer
) -> None:
    gateway = start_gateway(config_for(upstream, **{"gpt-test": "upstream-a"}))
    write(gateway, "models: {")
    assert gateway.process is not None
    os.kill(gateway.process.pid, signal.SIGHUP)
    wait_for(lambda: "config reload failed" in gateway.log(), "the failure in the log")
    assert "the last reload failed" in httpx.get(f"{gateway.url}/ready").json()["checks"]["config"]
    assert gateway.process.poll() is None


def test_changes_that_need_a_restart_are_refused(start_gateway: GatewayFactory, upstream: FakeServer) -> None:
    config = config_for(upstream, **{"gpt-test": "upstream-a"})
    gateway = start_gateway(config)
    write(gateway, {**config, "master_key": "sk-another-master-key"})
    response = reload_by_post(gateway)
    assert response.status_code == 400
    assert "changing master_key needs a restart" in response.json()["error"]["message"]
    assert "sk-another-master-key" not in response.text
    assert httpx.get(f"{gateway.url}/v1/models", headers=ADMIN).status_code == 200  # the old key still rules


async def test_a_stream_started_before_a_reload_finishes_on_the_old_config(
    start_gateway: GatewayFactory, upstream: FakeServer
) -> None:
    config = config_for(upstream, **{"gpt-test": "upstream-a", "slow-stream": "drip-100-15"})
    gateway = start_gateway(config)
    async with openai.AsyncOpenAI(base_url=f"{gateway.url}/v1", api_key=MASTER_KEY, max_retries=0) as client:
        stream = await client.chat.completions.create(
            model="slow-stream", messages=[{"role": "user", "content": "hi"}], stream=True
        )
        chunks = [await anext(stream)]
        write(gateway, config_for(upstream, **{"gpt-test": "upstream-a"}))  # slow-stream is gone
        assert (await asyncio.to_thread(reload_by_post, gateway)).status_code == 200
        chunks += [chunk async for chunk in stream]
        words = [chunk.choices[0].delta.content for chunk in chunks if chunk.choices]
        assert words.count("drip ") == 15  # every chunk the old config's upstream sent arrived
        with pytest.raises(openai.NotFoundError):
            await client.chat.completions.create(
                model="slow-stream", messages=[{"role": "user", "content": "hi"}]
            )


def test_a_reload_does_not_reset_rate_limits(start_gateway: GatewayFactory, upstream: FakeServer) -> None:
    config = config_for(upstream, **{"gpt-test": "upstream-a"})
    gateway = start_gateway(config)
    created = httpx.post(f"{gateway.url}/admin/keys", headers=ADMIN, json={"name": "limited", "rpm": 3})
    assert created.status_code == 201, created.text
    client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=created.json()["key"], max_retries=0)
    for _ in range(3):
        client.chat.completions.create(model="gpt-test", messages=[{"role": "user", "content": "hi"}])
    write(gateway, config_for(upstream, **{"gpt-test": "upstream-b"}))
    assert reload_by_post(gateway).status_code == 200
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model="gpt-test", messages=[{"role": "user", "content": "hi"}])
