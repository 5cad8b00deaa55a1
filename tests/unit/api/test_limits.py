"""The gateway's own size limits (api/middleware/limits.py), driven in-process: a body over
`max_request_bytes` is a 413 whether its length is declared or it arrives chunked, headers
over `max_header_bytes` are a 431, each in the dialect of the route hit (Anthropic's shape
on `/v1/messages`, OpenAI's elsewhere), and the request never reaches the hook chain."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest

from tests.stubs import RecordingHook, mock_config
from tests.unit.api.asgi import ANTHROPIC, ROUTES, TEXT, error_of, gateway

LIMIT = 1024
PATHS = list(ROUTES)
LIMITS = {"server": {"max_request_bytes": LIMIT, "max_header_bytes": LIMIT}}

JSON_TYPE = {"content-type": "application/json"}


def padded(path: str, size: int) -> bytes:
    """`path`'s valid body, its prompt padded so the whole is `size` bytes."""
    raw = orjson.dumps(ROUTES[path])
    quoted = orjson.dumps(TEXT)
    raw = raw.replace(quoted, orjson.dumps(TEXT + " " + "x" * (size - len(raw) - 1)))
    assert len(raw) == size
    return raw


async def in_parts(raw: bytes, size: int = 300) -> AsyncIterator[bytes]:
    for start in range(0, len(raw), size):
        yield raw[start : start + size]


def check_too_large(path: str, response: Any, status: int) -> None:
    assert response.status_code == status
    error = error_of(path, response)
    if path in ANTHROPIC:
        assert error["type"] == ("request_too_large" if status == 413 else "invalid_request_error")
    else:
        assert error["type"] == "invalid_request_error"
        assert error["code"] == ("request_too_large" if status == 413 else "request_header_fields_too_large")


@pytest.mark.parametrize("path", PATHS)
async def test_a_declared_body_over_the_limit_is_a_413(path: str) -> None:
    hook = RecordingHook()
    async with gateway(mock_config(**LIMITS), hooks=[hook]) as client:
        response = await client.post(path, content=padded(path, LIMIT + 1), headers=JSON_TYPE)
    check_too_large(path, response, 413)
    assert f"the limit of {LIMIT} bytes" in error_of(path, response)["message"]
    assert response.headers["connection"] == "close"  # the body was never read
    assert hook.seen == []


@pytest.mark.parametrize("path", PATHS)
async def test_a_chunked_body_over_the_limit_is_a_413(path: str) -> None:
    hook = RecordingHook()
    async with gateway(mock_config(**LIMITS), hooks=[hook]) as client:
        request = client.build_request(
            "POST", path, content=in_parts(padded(path, LIMIT + 1)), headers=JSON_TYPE
        )
        assert "content-length" not in request.headers
        response = await client.send(request)
    check_too_large(path, response, 413)
    assert hook.seen == []


@pytest.mark.parametrize("path", PATHS)
async def test_a_body_at_the_limit_is_served(path: str) -> None:
    async with gateway(mock_config(**LIMITS)) as client:
        declared = await client.post(path, content=padded(path, LIMIT), headers=JSON_TYPE)
        chunked = await client.post(path, content=in_parts(padded(path, LIMIT)), headers=JSON_TYPE)
    assert (declared.status_code, chunked.status_code) == (200, 200)


@pytest.mark.parametrize("path", PATHS)
async def test_headers_over_the_limit_are_a_431(path: str) -> None:
    hook = RecordingHook()
    async with gateway(mock_config(**LIMITS), hooks=[hook]) as client:
        response = await client.post(path, json=ROUTES[path], headers={"x-padding": "x" * LIMIT})
        served = await client.post(path, json=ROUTES[path], headers={"x-padding": "x" * 100})
    check_too_large(path, response, 431)
    assert f"the limit is {LIMIT}" in error_of(path, response)["message"]
    assert served.status_code == 200
    assert hook.count("before") == 1


async def test_other_routes_get_the_openai_shape() -> None:
    async with gateway(mock_config(**LIMITS)) as client:
        response = await client.get("/health", headers={"x-padding": "x" * LIMIT})
    check_too_large("/health", response, 431)
