"""`POST /api/chat`, the SDK-free endpoint, over plain HTTP against the fake OpenAI upstream."""

from __future__ import annotations

from typing import Any

import httpx2
import orjson
import pytest

from tests.conftest import MASTER_KEY, UPSTREAM_KEY
from tests.fakes.openai import FakeOpenAI
from tests.gateway import GatewayProcess

AUTH = {"authorization": f"Bearer {MASTER_KEY}"}


def chat(gateway: GatewayProcess, body: Any, headers: dict[str, str] | None = None) -> httpx2.Response:
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    return httpx2.post(
        f"{gateway.url}/api/chat",
        content=content,
        headers={"content-type": "application/json", **AUTH, **(headers or {})},
        timeout=10,
    )


def sse_events(gateway: GatewayProcess, body: dict[str, Any]) -> tuple[httpx2.Response, list[Any]]:
    """The parsed `data:` payloads of a streamed answer, in order."""
    events: list[Any] = []
    with httpx2.stream("POST", f"{gateway.url}/api/chat", json=body, headers=AUTH, timeout=10) as response:
        for line in response.iter_lines():
            if line.startswith("data: "):
                events.append(orjson.loads(line.removeprefix("data: ")))
            else:
                assert line == "", f"unexpected SSE line {line!r}"
    return response, events


def test_a_message_gets_a_reply(openai_gateway: GatewayProcess, fake: FakeOpenAI) -> None:
    response = chat(openai_gateway, {"message": "Hello there"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {
        "reply": "echo: Hello there",
        "model": "upstream-gpt",
        "provider": "fake",
        "finish_reason": "stop",
        "usage": {"prompt_tokens": 2, "completion_tokens": 3, "total_tokens": 5},
    }
    sent = fake.last()
    assert sent.path == "/v1/chat/completions"
    assert sent.body == {"model": "upstream-gpt", "messages": [{"role": "user", "content": "Hello there"}]}
    assert sent.headers["Authorization"] == f"Bearer {UPSTREAM_KEY}"
    assert response.headers["x-llm-gateway-provider"] == "fake"
    assert response.headers["x-llm-gateway-model"] == "upstream-gpt"
    assert response.headers["x-request-id"]


def test_system_history_and_sampling_reach_the_upstream(
    openai_gateway: GatewayProcess, fake: FakeOpenAI
) -> None:
    history = [
        {"role": "user", "content": "My name is Ada."},
        {"role": "assistant", "content": "Hello Ada."},
    ]
    body = {
        "message": "What is my name?",
        "model": "gpt-test",
        "system": "Answer in one word.",
        "history": history,
        "temperature": 0.3,
        "max_tokens": 17,
    }
    response = chat(openai_gateway, body)
    assert response.status_code == 200, response.text
    assert response.json()["reply"] == "echo: What is my name?"
    assert fake.last().body == {
        "model": "upstream-gpt",
        "messages": [
            {"role": "system", "content": "Answer in one word."},
            *history,
            {"role": "user", "content": "What is my name?"},
        ],
        "temperature": 0.3,
        "max_tokens": 17,
    }
    # The upstream counted every word it was sent, so usage proves the whole conversation went.
    assert response.json()["usage"]["prompt_tokens"] == 4 + 4 + 2 + 4


def test_a_named_model_is_routed_to_its_deployment(openai_gateway: GatewayProcess, fake: FakeOpenAI) -> None:
    response = chat(openai_gateway, {"message": "x", "model": "slow-model"})
    assert response.status_code == 200
    assert fake.last().body["model"] == "slow-300"
    assert response.json()["model"] == "slow-300"


def test_stream_sends_text_deltas_then_a_final_event_with_usage(
    openai_gateway: GatewayProcess, fake: FakeOpenAI
) -> None:
    response, events = sse_events(openai_gateway, {"message": "one two three", "stream": True})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["x-llm-gateway-provider"] == "fake"
    *deltas, final = events
    assert deltas == [{"delta": "echo: "}, {"delta": "one "}, {"delta": "two "}, {"delta": "three"}]
    assert final == {
        "done": True,
        "reply": "echo: one two three",
        "model": "upstream-gpt",
        "provider": "fake",
        "finish_reason": "stop",
        "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7},
    }
    sent = fake.last().body
    assert sent["stream"] is True
    assert sent["stream_options"] == {"include_usage": True}


def test_a_stream_failing_midway_ends_with_an_error_event(openai_gateway: GatewayProcess) -> None:
    response, events = sse_events(
        openai_gateway, {"message": "x", "model": "midstream-error-model", "stream": True}
    )
    assert response.status_code == 200
    assert events[-1]["error"]["message"]
    assert set(events[-1]["error"]) == {"message", "type", "code", "param"}
    assert not any(event.get("done") for event in events)


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({}, "message"),
        ({"message": ""}, "message"),
        ({"message": 42}, "message"),
        ({"message": "x", "model": 7}, "model"),
        ({"message": "x", "system": ["a"]}, "system"),
        ({"message": "x", "history": "earlier"}, "history"),
        (
            {
                "message": "x",
                "history": [{"role": "user", "content": "a"}, {"role": "wizard", "content": "b"}],
            },
            "history[1]",
        ),
        ({"message": "x", "temperature": "warm"}, "temperature"),
        ({"message": "x", "max_tokens": 2.5}, "max_tokens"),
        ({"message": "x", "stream": "yes"}, "stream"),
        ({"message": "x", "top_p": 0.9}, "top_p"),
    ],
)
def test_validation_errors_are_400_naming_the_field(
    openai_gateway: GatewayProcess, fake: FakeOpenAI, body: dict[str, Any], param: str
) -> None:
    response = chat(openai_gateway, body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == param
    assert error["type"] == "invalid_request_error"
    assert param.split("[")[0] in error["message"]
    assert not fake.requests


@pytest.mark.parametrize("raw", [b"", b"{not json", b'["message"]', b'"Hello"'])
def test_a_body_that_is_not_a_json_object_is_400(openai_gateway: GatewayProcess, raw: bytes) -> None:
    response = chat(openai_gateway, raw)
    assert response.status_code == 400
    assert set(response.json()["error"]) == {"message", "type", "code", "param"}


def test_the_master_key_is_required(openai_gateway: GatewayProcess, fake: FakeOpenAI) -> None:
    response = httpx2.post(f"{openai_gateway.url}/api/chat", json={"message": "x"}, timeout=10)
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "authentication_error"
    wrong = chat(openai_gateway, {"message": "x"}, headers={"authorization": "Bearer sk-wrong"})
    assert wrong.status_code == 401
    assert not fake.requests


def test_an_unknown_model_is_404(openai_gateway: GatewayProcess) -> None:
    response = chat(openai_gateway, {"message": "x", "model": "no-such-model"})
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "model_not_found"


@pytest.mark.parametrize(
    ("model", "status"),
    [("error-400-model", 400), ("error-404-model", 404), ("error-500-model", 502), ("garbage-model", 502)],
)
def test_upstream_errors_map_as_on_the_openai_endpoint(
    openai_gateway: GatewayProcess, model: str, status: int
) -> None:
    response = chat(openai_gateway, {"message": "x", "model": model})
    assert response.status_code == status
    assert UPSTREAM_KEY not in response.text
    assert set(response.json()["error"]) == {"message", "type", "code", "param"}


def test_fallbacks_and_the_no_retry_header(openai_gateway: GatewayProcess, fake: FakeOpenAI) -> None:
    body = {"message": "x", "model": "error-500-model", "fallbacks": ["gpt-test"]}
    response = chat(openai_gateway, body)
    assert response.status_code == 200, response.text
    assert response.json()["reply"] == "echo: x"
    assert response.headers["x-llm-gateway-fallback"] == "gpt-test"
    assert "fallbacks" not in fake.last().body
    # With retries off there is no fallback either: the client sees the model's own failure.
    response = chat(openai_gateway, body, headers={"x-llm-gateway-no-retry": "true"})
    assert response.status_code == 502
    assert "x-llm-gateway-fallback" not in response.headers
    bad = chat(openai_gateway, {"message": "x", "fallbacks": ["no-such-model"]})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "fallbacks"
