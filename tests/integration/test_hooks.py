"""The hook chain on a real server: every front door and operation runs through it, and
`on_end` comes exactly once per request on every exit path (completed, refused, upstream
error, client disconnect), counted by `tests.hooks.RecordingHook` from outside the process."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx2
import openai
import orjson
import pytest

from tests.conftest import MASTER_KEY, GatewayFactory, openai_config
from tests.fakes.openai import FakeOpenAI
from tests.fakes.server import FakeServer
from tests.gateway import GatewayProcess
from tests.hooks import LOG_VARIABLE, REFUSED_USER

HI = [{"role": "user", "content": "hi"}]
AUTH = {"authorization": f"Bearer {MASTER_KEY}"}


@pytest.fixture(scope="module")
def hook_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("hooks") / "calls.jsonl"


@pytest.fixture(scope="module")
def gateway(
    fake_openai: tuple[FakeOpenAI, FakeServer], start_gateway: GatewayFactory, hook_log: Path
) -> GatewayProcess:
    _, server = fake_openai
    models = {
        "gpt-test": "upstream-gpt",
        "drip-model": "drip-50",
        "hang-model": "hang",
        "bad-model": "error-500",
    }
    config = openai_config(server.url, models, master_key=MASTER_KEY, hooks=["tests.hooks:RecordingHook"])
    config["routing"] = {"max_attempts": 1}
    return start_gateway(config, env={LOG_VARIABLE: str(hook_log)})


@pytest.fixture
def sdk(gateway: GatewayProcess) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=MASTER_KEY, max_retries=0) as client:
        yield client


@pytest.fixture
def claude(gateway: GatewayProcess) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=gateway.url, api_key=MASTER_KEY, max_retries=0) as client:
        yield client


def calls(log: Path, request_id: str, *, settle: bool = False) -> list[dict[str, Any]]:
    """The hook calls of one request; with `settle`, wait until its `end` was written."""
    deadline = time.monotonic() + (3.0 if settle else 0.0)
    while True:
        lines = log.read_bytes().splitlines() if log.exists() else []
        mine = [entry for entry in map(orjson.loads, lines) if entry["request_id"] == request_id]
        if not settle or any(e["event"] == "end" for e in mine) or time.monotonic() > deadline:
            return mine
        time.sleep(0.02)


def events(log: Path, request_id: str, settle: bool = False) -> list[str]:
    return [entry["event"] for entry in calls(log, request_id, settle=settle)]


def rid(name: str) -> dict[str, str]:
    return {"x-request-id": f"{name}-{time.monotonic_ns()}"}


def test_chat_completed(sdk: openai.OpenAI, hook_log: Path) -> None:
    headers = rid("chat")
    raw = sdk.chat.completions.with_raw_response.create(model="gpt-test", messages=HI, extra_headers=headers)  # type: ignore[arg-type]
    assert raw.parse().choices[0].message.content
    entries = calls(hook_log, headers["x-request-id"])
    assert [e["event"] for e in entries] == ["before", "after", "end"]
    assert entries[0]["operation"] == "chat" and entries[0]["dialect"] == "openai.chat"
    assert entries[-1]["error"] is None and entries[-1]["usage"]["prompt_tokens"] > 0


def test_chat_stream_completed(sdk: openai.OpenAI, hook_log: Path) -> None:
    headers = rid("chat-stream")
    stream = sdk.chat.completions.create(
        model="gpt-test",
        messages=HI,  # type: ignore[arg-type]
        stream=True,
        stream_options={"include_usage": True},
        extra_headers=headers,
    )
    assert list(stream)
    entries = calls(hook_log, headers["x-request-id"], settle=True)
    assert [e["event"] for e in entries] == ["before", "end"]
    assert entries[-1]["error"] is None and entries[-1]["usage"]["completion_tokens"] > 0


@pytest.mark.parametrize("stream", [False, True])
def test_messages(claude: anthropic.Anthropic, hook_log: Path, stream: bool) -> None:
    headers = rid(f"messages-{stream}")
    if stream:
        with claude.messages.stream(model="gpt-test", max_tokens=10, messages=HI, extra_headers=headers) as s:  # type: ignore[arg-type]
            assert s.get_final_message().content
    else:
        message = claude.messages.create(model="gpt-test", max_tokens=10, messages=HI, extra_headers=headers)  # type: ignore[arg-type]
        assert message.content
    entries = calls(hook_log, headers["x-request-id"], settle=True)
    assert [e["event"] for e in entries] == (["before", "end"] if stream else ["before", "after", "end"])
    assert entries[0]["operation"] == "messages" and entries[0]["dialect"] == "anthropic.messages"
    assert entries[-1]["usage"]["prompt_tokens"] > 0


def test_count_tokens_and_embeddings(sdk: openai.OpenAI, claude: anthropic.Anthropic, hook_log: Path) -> None:
    headers = rid("count")
    claude.messages.count_tokens(model="gpt-test", messages=HI, extra_headers=headers)  # type: ignore[arg-type]
    assert events(hook_log, headers["x-request-id"]) == ["before", "after", "end"]
    headers = rid("embed")
    sdk.embeddings.create(model="gpt-test", input="hi", extra_headers=headers)
    entries = calls(hook_log, headers["x-request-id"])
    assert [e["event"] for e in entries] == ["before", "after", "end"]
    assert entries[0]["operation"] == "embeddings"


@pytest.mark.parametrize("stream", [False, True])
def test_simple_api(gateway: GatewayProcess, hook_log: Path, stream: bool) -> None:
    headers = {**AUTH, **rid(f"simple-{stream}")}
    body = {"message": "hi", "model": "gpt-test", "stream": stream}
    response = httpx2.post(f"{gateway.url}/api/chat", json=body, headers=headers)
    assert response.status_code == 200
    entries = calls(hook_log, headers["x-request-id"], settle=True)
    assert [e["event"] for e in entries] == (["before", "end"] if stream else ["before", "after", "end"])
    assert entries[0]["dialect"] == "simple.chat"


def test_upstream_error(sdk: openai.OpenAI, hook_log: Path) -> None:
    headers = rid("error")
    with pytest.raises(openai.APIStatusError) as caught:
        sdk.chat.completions.create(model="bad-model", messages=HI, extra_headers=headers)  # type: ignore[arg-type]
    assert caught.value.status_code == 502
    entries = calls(hook_log, headers["x-request-id"])
    assert [e["event"] for e in entries] == ["before", "end"]
    assert entries[-1]["error"] == "AllDeploymentsFailed"


def test_a_refusing_hook_is_the_answer_in_each_dialect(
    sdk: openai.OpenAI, claude: anthropic.Anthropic, fake: FakeOpenAI, hook_log: Path
) -> None:
    headers = rid("refused")
    with pytest.raises(openai.RateLimitError) as caught:
        sdk.chat.completions.create(model="gpt-test", messages=HI, user=REFUSED_USER, extra_headers=headers)  # type: ignore[arg-type]
    assert caught.value.body["message"] == "refused by the test policy"  # type: ignore[index]
    entries = calls(hook_log, headers["x-request-id"])
    assert [e["event"] for e in entries] == ["before", "end"] and entries[-1]["error"] == "LimitExceeded"
    with pytest.raises(anthropic.RateLimitError) as refused:
        claude.messages.create(
            model="gpt-test",
            max_tokens=10,
            messages=HI,  # type: ignore[arg-type]
            metadata={"user_id": REFUSED_USER},
        )
    assert refused.value.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]
    assert fake.requests == []


def test_client_disconnect_mid_stream(gateway: GatewayProcess, fake: FakeOpenAI, hook_log: Path) -> None:
    headers = {**AUTH, **rid("gone")}
    body = {"model": "drip-model", "messages": HI, "stream": True}
    with httpx2.stream("POST", f"{gateway.url}/v1/chat/completions", json=body, headers=headers) as response:
        lines = response.iter_lines()
        assert any(next(lines).startswith("data: ") for _ in range(4))
    entries = calls(hook_log, headers["x-request-id"], settle=True)
    time.sleep(0.2)  # a second `end` would come now, if it came at all
    entries = calls(hook_log, headers["x-request-id"])
    assert [e["event"] for e in entries] == ["before", "end"]
    assert entries[-1]["error"] == "CancelledError"


def test_client_disconnect_while_waiting(gateway: GatewayProcess, fake: FakeOpenAI, hook_log: Path) -> None:
    headers = rid("impatient")
    with (
        openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=MASTER_KEY, max_retries=0, timeout=0.3) as sdk,
        pytest.raises(openai.APITimeoutError),
    ):
        sdk.chat.completions.create(model="hang-model", messages=HI, extra_headers=headers)  # type: ignore[arg-type]
    entries = calls(hook_log, headers["x-request-id"], settle=True)
    assert [e["event"] for e in entries] == ["before", "end"]
    assert entries[-1]["error"] == "CancelledError"
