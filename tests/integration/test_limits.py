"""The gateway's own limits on what comes in: body size (413) and header size (431)."""

from __future__ import annotations

import socket

import httpx2
import pytest

from tests.conftest import MASTER_KEY, GatewayFactory, openai_config
from tests.fakes.openai import FakeOpenAI
from tests.fakes.server import FakeServer
from tests.gateway import GatewayProcess

AUTH = {"authorization": f"Bearer {MASTER_KEY}"}


@pytest.fixture(scope="module")
def small_gateway(
    fake_openai: tuple[FakeOpenAI, FakeServer], start_gateway: GatewayFactory
) -> GatewayProcess:
    config = openai_config(fake_openai[1].url, {"gpt-test": "upstream-gpt"}, master_key=MASTER_KEY)
    config["server"] = {"max_request_bytes": 4096, "max_header_bytes": 2048}
    return start_gateway(config)


def chat_body(size: int) -> dict[str, object]:
    return {"model": "gpt-test", "messages": [{"role": "user", "content": "x" * size}]}


def test_body_over_the_limit_is_413(small_gateway: GatewayProcess, fake: FakeOpenAI) -> None:
    response = httpx2.post(f"{small_gateway.url}/v1/chat/completions", json=chat_body(5000), headers=AUTH)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "request_too_large"
    assert not fake.requests


def test_body_under_the_limit_passes(small_gateway: GatewayProcess) -> None:
    response = httpx2.post(f"{small_gateway.url}/v1/chat/completions", json=chat_body(3000), headers=AUTH)
    assert response.status_code == 200


def test_chunked_body_over_the_limit_is_413(small_gateway: GatewayProcess, fake: FakeOpenAI) -> None:
    def chunks():  # type: ignore[no-untyped-def]
        yield b'{"model": "gpt-test", "messages": [{"role": "user", "content": "'
        for _ in range(10):
            yield b"y" * 1000
        yield b'"}]}'

    headers = {**AUTH, "content-type": "application/json"}
    response = httpx2.post(f"{small_gateway.url}/v1/chat/completions", content=chunks(), headers=headers)
    assert response.status_code == 413
    assert not fake.requests


def test_headers_over_the_limit_are_431(small_gateway: GatewayProcess) -> None:
    headers = {**AUTH, "x-padding": "p" * 4000}
    response = httpx2.post(f"{small_gateway.url}/v1/chat/completions", json=chat_body(10), headers=headers)
    assert response.status_code == 431
    assert response.json()["error"]["code"] == "request_header_fields_too_large"


def test_default_limit_accepts_a_large_image(openai_gateway: GatewayProcess, fake: FakeOpenAI) -> None:
    """A 6 MB data-URL image is within the default 16 MiB and reaches the upstream intact."""
    image = "data:image/png;base64," + "A" * 6_000_000
    content = [{"type": "text", "text": "what is this"}, {"type": "image_url", "image_url": {"url": image}}]
    body = {"model": "gpt-test", "messages": [{"role": "user", "content": content}]}
    response = httpx2.post(f"{openai_gateway.url}/v1/chat/completions", json=body, headers=AUTH, timeout=30)
    assert response.status_code == 200
    assert fake.last().body["messages"][0]["content"][1]["image_url"]["url"] == image


def test_megabytes_of_headers_are_refused_not_served(openai_gateway: GatewayProcess) -> None:
    """The server underneath would accept this; the gateway answers 431 without routing it."""
    request = (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {MASTER_KEY}\r\n"
        f"X-Big: {'b' * 1_000_000}\r\nContent-Length: 2\r\n\r\n{{}}"
    ).encode()
    with socket.create_connection(("127.0.0.1", openai_gateway.port), timeout=10) as sock:
        sock.sendall(request)
        status_line = sock.recv(4096).split(b"\r\n", 1)[0]
    assert b" 431 " in status_line + b" "


def test_front_door_limits_are_anthropic_shaped(small_gateway: GatewayProcess) -> None:
    body = {"model": "gpt-test", "max_tokens": 10, "messages": [{"role": "user", "content": "x" * 5000}]}
    response = httpx2.post(f"{small_gateway.url}/v1/messages", json=body, headers=AUTH)
    assert response.status_code == 413
    assert response.json()["type"] == "error"
    assert response.json()["error"]["type"] == "request_too_large"
    headers = {**AUTH, "x-padding": "p" * 4000}
    response = httpx2.post(f"{small_gateway.url}/v1/messages", json={"model": "gpt-test"}, headers=headers)
    assert response.status_code == 431
    assert response.json()["type"] == "error"
