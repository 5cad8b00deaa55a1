"""Streamed usage on a real server, through the official SDK: the gateway always asks the
upstream for usage, a client gets the usage chunk only if it asked, and a hook loaded from
the config sees the usage either way; an upstream that ignores `include_usage` has it
counted offline."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import orjson
import pytest

from llm_gateway.core.context import Operation
from llm_gateway.services.tokens import count_prompt_tokens, count_text_tokens
from tests.conftest import MASTER_KEY, GatewayFactory, openai_config
from tests.fakes.openai import FakeOpenAI
from tests.fakes.server import FakeServer
from tests.gateway import GatewayProcess
from tests.hooks import LOG_VARIABLE

HI = [{"role": "user", "content": "count these four words"}]


@pytest.fixture(scope="module")
def hook_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("usage") / "calls.jsonl"


@pytest.fixture(scope="module")
def gateway(
    fake_openai: tuple[FakeOpenAI, FakeServer], start_gateway: GatewayFactory, hook_log: Path
) -> GatewayProcess:
    _, server = fake_openai
    models = {"gpt-test": "upstream-gpt", "quiet": "no-usage"}
    config = openai_config(server.url, models, master_key=MASTER_KEY, hooks=["tests.hooks:RecordingHook"])
    return start_gateway(config, env={LOG_VARIABLE: str(hook_log)})


@pytest.fixture
def sdk(gateway: GatewayProcess) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=MASTER_KEY, max_retries=0) as client:
        yield client


def ended_usage(log: Path, request_id: str) -> Any:
    """The usage the hook's `on_end` got for one request (waiting a moment for it)."""
    deadline = time.monotonic() + 3.0
    while True:
        lines = log.read_bytes().splitlines() if log.exists() else []
        for entry in map(orjson.loads, lines):
            if entry["request_id"] == request_id and entry["event"] == "end":
                return entry["usage"]
        assert time.monotonic() < deadline, "on_end was not called"
        time.sleep(0.02)


def stream(sdk: openai.OpenAI, model: str, **options: Any) -> tuple[str, list[Any]]:
    request_id = f"usage-{time.monotonic_ns()}"
    chunks = sdk.chat.completions.create(
        model=model, messages=HI, stream=True, extra_headers={"x-request-id": request_id}, **options
    )
    return request_id, list(chunks)


def test_a_client_that_did_not_ask_gets_no_usage_chunk_yet_hooks_see_it(
    sdk: openai.OpenAI, fake: FakeOpenAI, hook_log: Path
) -> None:
    request_id, chunks = stream(sdk, "gpt-test")
    assert fake.last().body["stream_options"] == {"include_usage": True}
    assert all(chunk.choices for chunk in chunks)
    assert all(chunk.usage is None for chunk in chunks)
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "echo: count these four words"
    assert ended_usage(hook_log, request_id) == {
        "prompt_tokens": 4,
        "completion_tokens": 5,
        "total_tokens": 9,
    }


def test_a_client_that_asked_gets_the_usage_chunk(sdk: openai.OpenAI, hook_log: Path) -> None:
    request_id, chunks = stream(sdk, "gpt-test", stream_options={"include_usage": True})
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (4, 5)
    assert ended_usage(hook_log, request_id)["total_tokens"] == 9


def test_an_upstream_that_ignores_include_usage_is_counted_offline(
    sdk: openai.OpenAI, hook_log: Path
) -> None:
    request_id, chunks = stream(sdk, "quiet", stream_options={"include_usage": True})
    assert all(chunk.usage is None for chunk in chunks)  # nothing to pass on: the upstream sent none
    prompt = count_prompt_tokens(Operation.CHAT, {"messages": HI}, "no-usage")
    completion = count_text_tokens("echo: count these four words", "no-usage")
    assert ended_usage(hook_log, request_id) == {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }
