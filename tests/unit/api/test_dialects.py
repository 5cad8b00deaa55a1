"""Each front door's wire format (api/openai.py, embeddings.py, simple.py, anthropic.py),
driven in-process over the mock provider: how a request parses, how a result and a stream
render, and how an error renders before the first byte and after it (one error event in
the door's own shape)."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from llm_gateway.api.anthropic import AnthropicMessages
from llm_gateway.api.openai import OpenAIChat
from llm_gateway.core.context import Operation
from llm_gateway.core.errors import (
    AllDeploymentsFailed,
    GatewayError,
    InvalidRequest,
    LimitExceeded,
    PermissionDenied,
    UpstreamRateLimited,
)
from tests.stubs import RecordingHook, context
from tests.unit.api.asgi import (
    ANTHROPIC,
    CHAT,
    CUT,
    EMBEDDINGS,
    MESSAGES,
    ROUTES,
    SIMPLE,
    STREAMING,
    TEXT,
    error_of,
    failing_after_first,
    frames,
    gateway,
)

PATHS = list(ROUTES)


def test_openai_chat_takes_the_fallbacks_out_of_the_body() -> None:
    ctx = context()
    call = OpenAIChat().parse(ctx, {**CHAT, "fallbacks": ["b"], "stream": True}, {})
    assert (call.operation, call.model, call.stream) == (Operation.CHAT, "mock", True)
    assert "fallbacks" not in call.body
    assert ctx.fallbacks == ["b"]


@pytest.mark.parametrize("path", PATHS)
async def test_every_route_takes_the_clients_fallbacks_and_checks_them(path: str) -> None:
    """`fallbacks` is read by every dialect, never forwarded, and an unknown model in it is
    a 400 naming the field, on every per-request route."""
    async with gateway() as client:
        response = await client.post(path, json={**ROUTES[path], "fallbacks": ["nope"]})
        assert response.status_code == 400
        assert "fallbacks" in response.text
        response = await client.post(path, json={**ROUTES[path], "fallbacks": ["mock"]})
        assert response.status_code == 200
        response = await client.post(path, json={**ROUTES[path], "fallbacks": "mock"})
        assert response.status_code == 400


@pytest.mark.parametrize(
    ("body", "param"),
    [({**MESSAGES, "model": 7}, "model"), ({**MESSAGES, "stream": "yes"}, "stream")],
)
def test_anthropic_refuses_a_mistyped_model_or_stream(body: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        AnthropicMessages().parse(context(), body, {})
    assert caught.value.param == param


def test_anthropic_keeps_the_beta_header() -> None:
    call = AnthropicMessages().parse(context(), MESSAGES, {"anthropic-beta": "tools-1"})
    assert (call.operation, call.options) == (Operation.MESSAGES, {"beta": "tools-1"})
    assert AnthropicMessages().parse(context(), MESSAGES, {}).options == {}


async def test_openai_chat_renders_the_completion() -> None:
    async with gateway() as client:
        response = await client.post("/v1/chat/completions", json=CHAT)
    body = response.json()
    assert response.headers["content-type"] == "application/json"
    assert body["object"] == "chat.completion"
    assert body["choices"][0]["message"] == {"role": "assistant", "content": TEXT}
    assert body["usage"] == {"prompt_tokens": 2, "completion_tokens": 2, "total_tokens": 4}


async def test_openai_embeddings_render_floats_or_base64() -> None:
    async with gateway() as client:
        floats = (await client.post("/v1/embeddings", json=EMBEDDINGS)).json()
        packed = (
            await client.post("/v1/embeddings", json={**EMBEDDINGS, "encoding_format": "base64"})
        ).json()
    assert floats["object"] == "list"
    assert floats["usage"] == {"prompt_tokens": 2, "total_tokens": 2}
    vector = floats["data"][0]["embedding"]
    assert len(vector) == 8 and all(isinstance(x, float) for x in vector)
    assert len(base64.b64decode(packed["data"][0]["embedding"])) == 8 * 4


async def test_simple_chat_renders_the_reply() -> None:
    async with gateway() as client:
        response = await client.post("/api/chat", json=SIMPLE)
    assert response.json() == {
        "reply": TEXT,
        "model": "mock",
        "provider": "mock",
        "finish_reason": "stop",
        "usage": {"prompt_tokens": 2, "completion_tokens": 2, "total_tokens": 4},
    }


async def test_anthropic_messages_render_a_message() -> None:
    async with gateway() as client:
        body = (await client.post("/v1/messages", json=MESSAGES)).json()
    assert (body["type"], body["role"], body["stop_reason"]) == ("message", "assistant", "end_turn")
    assert body["content"] == [{"type": "text", "text": TEXT}]
    assert (body["usage"]["input_tokens"], body["usage"]["output_tokens"]) == (2, 2)


async def test_anthropic_count_tokens_renders_the_count() -> None:
    async with gateway() as client:
        body = (
            await client.post("/v1/messages/count_tokens", json=ROUTES["/v1/messages/count_tokens"])
        ).json()
    assert set(body) == {"input_tokens"}
    assert body["input_tokens"] > 0


async def test_openai_stream_is_data_chunks_then_done() -> None:
    async with gateway() as client:
        response = await client.post("/v1/chat/completions", json=STREAMING["/v1/chat/completions"])
    events = frames(response)
    assert events[-1] == (None, "[DONE]")
    chunks = [data for name, data in events[:-1]]
    assert all(name is None for name, _ in events)
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == TEXT
    assert chunks[-1]["usage"]["total_tokens"] == 4


async def test_anthropic_stream_is_named_event_frames() -> None:
    async with gateway() as client:
        response = await client.post("/v1/messages", json=STREAMING["/v1/messages"])
    events = frames(response)
    names = [name for name, _ in events]
    assert names[0] == "message_start" and names[-2:] == ["message_delta", "message_stop"]
    assert all(data["type"] == name for name, data in events)
    text = "".join(d["delta"]["text"] for n, d in events if n == "content_block_delta")
    assert text == TEXT
    assert events[-2][1]["usage"]["output_tokens"] == 2


async def test_simple_stream_is_deltas_then_a_final_done_event() -> None:
    async with gateway() as client:
        response = await client.post("/api/chat", json=STREAMING["/api/chat"])
    events = [data for _, data in frames(response)]
    *deltas, done = events
    assert deltas and all(set(d) == {"delta"} for d in deltas)
    assert "".join(d["delta"] for d in deltas) == TEXT
    assert done == {
        "done": True,
        "reply": TEXT,
        "model": "mock",
        "provider": "mock",
        "finish_reason": "stop",
        "usage": {"prompt_tokens": 2, "completion_tokens": 2, "total_tokens": 4},
    }


@pytest.mark.parametrize("path", PATHS)
async def test_an_unknown_model_is_a_404_in_each_dialect(path: str) -> None:
    async with gateway() as client:
        response = await client.post(path, json={**ROUTES[path], "model": "nope"})
    assert response.status_code == 404
    error = error_of(path, response)
    assert error["type"] == ("not_found_error" if path in ANTHROPIC else "invalid_request_error")
    assert "'nope' does not exist" in error["message"]
    if path not in ANTHROPIC:
        assert (error["code"], error["param"]) == ("model_not_found", "model")


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize(
    ("refusal", "status", "openai_type", "anthropic_type"),
    [
        (PermissionDenied("not for this key"), 403, "permission_error", "permission_error"),
        (LimitExceeded("over the limit"), 429, "rate_limit_error", "rate_limit_error"),
    ],
    ids=["403", "429"],
)
async def test_a_refusal_renders_in_each_dialect(
    path: str, refusal: GatewayError, status: int, openai_type: str, anthropic_type: str
) -> None:
    async with gateway(hooks=[RecordingHook(refuse=refusal)]) as client:
        response = await client.post(path, json=ROUTES[path])
    assert response.status_code == status
    error = error_of(path, response)
    assert error["type"] == (anthropic_type if path in ANTHROPIC else openai_type)
    assert error["message"] == refusal.message


@pytest.mark.parametrize("path", PATHS)
async def test_an_upstream_failure_keeps_its_status_and_headers(path: str) -> None:
    cause = UpstreamRateLimited("slow down upstream", provider="mock", retry_after=2.5)
    failed = AllDeploymentsFailed(cause, attempts=3, causes=[cause] * 3)
    async with gateway(hooks=[RecordingHook(refuse=failed)]) as client:
        response = await client.post(path, json=ROUTES[path])
    assert response.status_code == 429
    assert response.headers["retry-after"] == "3"
    assert response.headers["x-llm-gateway-attempts"] == "3"
    error = error_of(path, response)
    assert error["type"] == "rate_limit_error"
    assert error["message"] == "slow down upstream"


@pytest.mark.parametrize("path", list(STREAMING))
async def test_a_stream_error_before_the_first_chunk_is_a_plain_error(path: str) -> None:
    async with gateway(hooks=[RecordingHook(refuse=LimitExceeded("over the limit"))]) as client:
        response = await client.post(path, json=STREAMING[path])
    assert response.status_code == 429
    assert response.headers["content-type"] == "application/json"
    assert error_of(path, response)["message"] == "over the limit"


async def test_an_openai_stream_failing_midway_ends_with_one_error_event() -> None:
    path = "/v1/chat/completions"
    hook = RecordingHook(answer=failing_after_first(path))
    async with gateway(hooks=[hook]) as client:
        response = await client.post(path, json=STREAMING[path])
    assert response.status_code == 200
    (_, first), (name, last) = frames(response)  # no [DONE]
    assert first["choices"][0]["delta"]["content"] == "par"
    assert name is None
    assert last == {
        "error": {
            "message": CUT,
            "type": "upstream_error",
            "param": None,
            "code": "upstream_connection_error",
        }
    }
    [end] = hook.ends
    assert end.error is not None and str(end.error) == CUT


async def test_an_anthropic_stream_failing_midway_ends_with_one_error_event() -> None:
    path = "/v1/messages"
    hook = RecordingHook(answer=failing_after_first(path))
    async with gateway(hooks=[hook]) as client:
        response = await client.post(path, json=STREAMING[path])
    assert response.status_code == 200
    (first, _), (name, last) = frames(response)
    assert first == "message_start"
    assert name == "error"
    assert last == {"type": "error", "error": {"type": "api_error", "message": CUT}}
    assert len(hook.ends) == 1


async def test_a_simple_stream_failing_midway_ends_with_one_error_event() -> None:
    path = "/api/chat"
    async with gateway(hooks=[RecordingHook(answer=failing_after_first(path))]) as client:
        response = await client.post(path, json=STREAMING[path])
    assert response.status_code == 200
    (_, first), (name, last) = frames(response)  # no final done event
    assert first == {"delta": "par"}
    assert name is None
    assert last["error"]["message"] == CUT


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
async def test_another_method_is_a_405_in_the_routes_dialect(path: str, method: str) -> None:
    async with gateway() as client:
        response = await client.request(method, path, headers={"x-request-id": "req-405"})
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    error = error_of(path, response)
    assert error["message"] == f"{method} is not allowed on {path}; use POST"
    if path in ANTHROPIC:
        assert error["type"] == "invalid_request_error"
        assert response.json()["request_id"] == "req-405"
    else:
        assert error["code"] == "method_not_allowed"
