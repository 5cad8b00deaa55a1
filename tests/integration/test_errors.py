"""Every error a client can get, OpenAI-shaped with the right status, through the openai SDK."""

from __future__ import annotations

from typing import Any

import httpx2
import openai
import pytest

from tests.conftest import MASTER_KEY, UPSTREAM_KEY, GatewayFactory, openai_config
from tests.fakes.openai import FakeOpenAI
from tests.gateway import GatewayProcess, free_port

HI = [{"role": "user", "content": "hi"}]


def post(gateway: GatewayProcess, body: bytes | dict[str, Any], **headers: str) -> httpx2.Response:
    headers = {"authorization": f"Bearer {MASTER_KEY}", "content-type": "application/json", **headers}
    if isinstance(body, dict):
        return httpx2.post(f"{gateway.url}/v1/chat/completions", json=body, headers=headers, timeout=10)
    return httpx2.post(f"{gateway.url}/v1/chat/completions", content=body, headers=headers, timeout=10)


def assert_openai_error(response: httpx2.Response, status: int, param: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error: dict[str, Any] = response.json()["error"]
    assert set(error) == {"message", "type", "code", "param"}
    assert error["message"]
    assert "Traceback" not in response.text
    assert UPSTREAM_KEY not in response.text
    if param is not None:
        assert error["param"] == param
    return error


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (b'{"model": "gpt-test", "messages": [', None),
        (b"[1, 2]", None),
        (b"", None),
        ({"model": "gpt-test"}, "messages"),
        ({"model": 42, "messages": HI}, "model"),
        ({"model": "gpt-test", "messages": "hi"}, "messages"),
        ({"model": "gpt-test", "messages": [{"content": "no role"}]}, "messages[0]"),
        ({"model": "gpt-test", "messages": HI, "stream": "yes"}, "stream"),
    ],
)
def test_malformed_requests_get_400(openai_gateway: GatewayProcess, body: Any, param: str | None) -> None:
    error = assert_openai_error(post(openai_gateway, body), 400, param)
    assert error["type"] == "invalid_request_error"


def test_unknown_model_is_404_listing_nothing_secret(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(model="no-such-model", messages=HI)  # type: ignore[arg-type]
    assert caught.value.code == "model_not_found"
    assert "upstream-gpt" not in caught.value.message
    assert "fake" not in caught.value.message


def test_missing_or_wrong_key_is_401(openai_gateway: GatewayProcess) -> None:
    for key in ("", "sk-wrong"):
        headers = {"authorization": f"Bearer {key}"} if key else {}
        response = httpx2.post(
            f"{openai_gateway.url}/v1/chat/completions",
            json={"model": "gpt-test", "messages": HI},
            headers=headers,
        )
        assert assert_openai_error(response, 401)["type"] == "authentication_error"
    wrong = openai.OpenAI(base_url=f"{openai_gateway.url}/v1", api_key="sk-wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        wrong.models.list()


def test_health_needs_no_key(openai_gateway: GatewayProcess) -> None:
    assert httpx2.get(f"{openai_gateway.url}/health").json() == {"status": "ok"}
    ready = httpx2.get(f"{openai_gateway.url}/ready").json()
    assert ready["status"] == "ready" and "gpt-test" in ready["models"]


@pytest.mark.parametrize(
    ("model", "status", "exception"),
    [
        ("error-400-model", 400, openai.BadRequestError),
        ("error-401-model", 401, openai.AuthenticationError),
        ("error-403-model", 403, openai.PermissionDeniedError),
        ("error-404-model", 404, openai.NotFoundError),
        ("error-422-model", 422, openai.UnprocessableEntityError),
        ("error-429-model", 429, openai.RateLimitError),
    ],
)
def test_upstream_4xx_keeps_status_and_message(
    client: openai.OpenAI, model: str, status: int, exception: type[openai.APIStatusError]
) -> None:
    with pytest.raises(exception) as caught:
        client.chat.completions.create(model=model, messages=HI)  # type: ignore[arg-type]
    assert caught.value.status_code == status
    assert f"fake upstream error {status}" in caught.value.message
    if status == 429:
        assert caught.value.response.headers["retry-after"] == "7"


def test_context_length_has_its_own_code(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="context-model", messages=HI)  # type: ignore[arg-type]
    assert caught.value.code == "context_length_exceeded"


@pytest.mark.parametrize("model", ["error-500-model", "error-503-model", "garbage-model", "reset-model"])
def test_upstream_failures_are_502(openai_gateway: GatewayProcess, model: str) -> None:
    for stream in (False, True):
        response = post(openai_gateway, {"model": model, "messages": HI, "stream": stream})
        error = assert_openai_error(response, 502)
        assert error["type"] == "upstream_error"


def test_upstream_timeout_is_504(openai_gateway: GatewayProcess, fake: FakeOpenAI) -> None:
    response = post(openai_gateway, {"model": "hang-model", "messages": HI})
    assert assert_openai_error(response, 504)["type"] == "timeout_error"


def test_connection_refused_is_502(start_gateway: GatewayFactory) -> None:
    gateway = start_gateway(openai_config(f"http://127.0.0.1:{free_port()}", {"dead": "x"}))
    response = post(gateway, {"model": "dead", "messages": HI})
    assert assert_openai_error(response, 502)["code"] == "upstream_connection_error"


def test_failure_after_first_chunk_is_an_error_event(client: openai.OpenAI) -> None:
    for model in ("midstream-error-model", "cut-model"):
        stream = client.chat.completions.create(model=model, messages=HI, stream=True)  # type: ignore[arg-type]
        received = []
        with pytest.raises(openai.APIError) as caught:
            for chunk in stream:
                received.append(chunk)
        assert received, "the first chunk arrived before the failure"
        assert UPSTREAM_KEY not in str(caught.value)


def test_unknown_route_and_method_are_openai_shaped(openai_gateway: GatewayProcess) -> None:
    assert_openai_error(httpx2.get(f"{openai_gateway.url}/v1/nothing-here"), 404)
    assert_openai_error(httpx2.get(f"{openai_gateway.url}/v1/chat/completions"), 405)


def test_upstream_key_never_logged(openai_gateway: GatewayProcess) -> None:
    for model in ("error-401-model", "error-500-model", "garbage-model"):
        post(openai_gateway, {"model": model, "messages": HI})
    assert UPSTREAM_KEY not in openai_gateway.log()
