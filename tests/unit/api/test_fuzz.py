"""Hostile bodies against every POST route, in process: no input may produce a 5xx or an
error body that is not JSON in the route's dialect.

Byte-level cases (deep nesting, invalid UTF-8, lone surrogates, NaN/Infinity, duplicate
keys, huge numbers, wrong content types, empty bodies, wrong methods) and structured ones
(each route's valid body with fields replaced by arbitrary JSON). About 3,300 cases in all;
tests/integration/test_fuzz_process.py runs a smaller sample against a real process.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx2 as httpx
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.unit.api.inprocess import ANTHROPIC, ROUTES, gateway

PATHS = list(ROUTES)
CONTENT_TYPES = [
    "application/json",
    "application/json; charset=utf-8",
    "text/plain",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=b",
    "",
    "application/json; charset=latin-1",
    "application/problem+json",
    "\x00",
]
HOSTILE = [
    b"",
    b" ",
    b"null",
    b"[]",
    b"{}",
    b'"x"',
    b"{" * 300,
    b"[" * 2000 + b"]" * 2000,
    b'{"a":' * 500 + b"1" + b"}" * 500,
    b'{"model":"mock","messages":[{"role":"user","content":"\xff\xfe"}]}',
    b'{"model":"mock","messages":[{"role":"user","content":"\\ud800"}]}',
    b'{"model":"mock","messages":[{"role":"user","content":"\\udfff\\ud800"}]}',
    b'{"model":"mock","messages":[{"role":"user","content":"\xed\xa0\x80"}]}',
    b'{"model":"mock","messages":[{"role":"user","content":"hi"}],"temperature":NaN}',
    b'{"model":"mock","messages":[{"role":"user","content":"hi"}],"temperature":Infinity}',
    b'{"model":"mock","messages":[{"role":"user","content":"hi"}],"temperature":-Infinity}',
    b'{"model":"mock","model":"other","messages":[{"role":"user","content":"hi"}]}',
    b'{"model":"mock","messages":[{"role":"user","content":"hi"}],"max_tokens":1' + b"0" * 400 + b"}",
    b'{"model":"mock","messages":[{"role":"user","content":"hi"}],"max_tokens":1e400}',
    b'{"model":"mock","messages":[{"role":"user","content":"hi"}],"n":-9223372036854775809}',
    b'{"model":"mock","messages":[{"role":"user","content":"hi"}],"seed":18446744073709551616}',
    b'{"model":"mock","messages":[{"role":"user","content":"hi"}]',
    b'{"model":"mock","messages":[{"role":"user","content":"hi"}]}trailing',
    b'\xef\xbb\xbf{"model":"mock","messages":[{"role":"user","content":"hi"}]}',
    b'{"model":"mock","messages":[{"role":"user","content":"hi\x00"}]}',
    b'{"model":"\\u0000","messages":[{"role":"user","content":"hi"}]}',
    b'{"model":"mock","stream":true,"messages":[{"role":"user","content":"hi"}],"stream_options":7}',
    b'{"model":"mock","stream":"yes","messages":[{"role":"user","content":"hi"}]}',
    b'{"model":"mock","messages":[{"role":"user","content":[{"type":"image_url","image_url":7}]}]}',
    b'{"model":"mock","messages":[{"role":"user","content":{"deep":' + b"[" * 200 + b"]" * 200 + b"}}]}",
    b'{"model":"mock","input":[[1,2],[3,"x"],null]}',
    b'{"model":"mock","input":[],"dimensions":-1}',
    b'{"model":"mock","max_tokens":"5","messages":[{"role":"user","content":"hi"}]}',
    b'{"model":"mock","max_tokens":5,"messages":[{"role":"user","content":[{"type":"tool_result"}]}]}',
    b'{"model":"mock","message":"hi","system":["x"]}',
    b'{"fallbacks":[1,{}],"model":"mock","messages":[{"role":"user","content":"hi"}]}',
    b'{"model":"mock","messages":[{"role":"user","content":"hi"}],"api_base":"http://169.254.169.254"}',
]
FIELDS = [
    "model",
    "messages",
    "input",
    "message",
    "stream",
    "stream_options",
    "max_tokens",
    "system",
    "tools",
    "temperature",
    "fallbacks",
    "metadata",
    "n",
    "stop",
    "encoding_format",
    "dimensions",
]
METHODS = ["GET", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


@pytest.fixture(scope="module")
def loop() -> AsyncIterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop  # type: ignore[misc]
    loop.close()


@pytest.fixture(scope="module")
def client(loop: asyncio.AbstractEventLoop) -> AsyncIterator[httpx.AsyncClient]:
    context = gateway()
    yield loop.run_until_complete(context.__aenter__())  # type: ignore[misc]
    loop.run_until_complete(context.__aexit__(None, None, None))


def post(
    loop: asyncio.AbstractEventLoop,
    client: httpx.AsyncClient,
    path: str,
    raw: bytes,
    content_type: str = "application/json",
    method: str = "POST",
) -> httpx.Response:
    headers = {"content-type": content_type} if content_type else {}
    request = client.request(method, path, content=raw, headers=headers)
    response = loop.run_until_complete(asyncio.wait_for(request, 10))
    check(path, method, response)
    return response


def check(path: str, method: str, response: httpx.Response) -> None:
    """No 5xx; every error a JSON body in the route's dialect (streams checked line by line)."""
    assert response.status_code < 500, (path, response.status_code, response.text[:500])
    if method == "HEAD":
        return
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        assert "internal gateway error" not in response.text
        return
    if method == "OPTIONS" and response.status_code < 400:
        return
    body = response.json()
    assert isinstance(body, dict)
    if response.status_code >= 400:
        if path in ANTHROPIC:
            assert body["type"] == "error" and isinstance(body["error"]["message"], str), body
        else:
            assert isinstance(body["error"]["message"], str), body


FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("raw", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_bodies(
    loop: asyncio.AbstractEventLoop, client: httpx.AsyncClient, path: str, raw: bytes
) -> None:
    post(loop, client, path, raw)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("content_type", CONTENT_TYPES)
def test_content_types(
    loop: asyncio.AbstractEventLoop, client: httpx.AsyncClient, path: str, content_type: str
) -> None:
    response = post(loop, client, path, orjson.dumps(ROUTES[path]), content_type)
    expected_json = content_type.split(";")[0] in ("application/json", "application/problem+json")
    assert (response.status_code == 200) is expected_json, response.text


@pytest.mark.parametrize("path", [*PATHS, "/v1/models", "/health", "/admin/x", "/nope"])
@pytest.mark.parametrize("method", METHODS)
def test_wrong_methods(
    loop: asyncio.AbstractEventLoop, client: httpx.AsyncClient, path: str, method: str
) -> None:
    post(loop, client, path, b"{}", method=method)


@pytest.mark.parametrize("path", PATHS)
@FUZZ
@given(data=st.binary(max_size=300))
def test_arbitrary_bytes(
    loop: asyncio.AbstractEventLoop, client: httpx.AsyncClient, path: str, data: bytes
) -> None:
    post(loop, client, path, data)


@pytest.mark.parametrize("path", PATHS)
@FUZZ
@given(replaced=st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=4))
def test_valid_bodies_with_arbitrary_fields(
    loop: asyncio.AbstractEventLoop, client: httpx.AsyncClient, path: str, replaced: dict[str, Any]
) -> None:
    # The standard library writes integers of any size (orjson stops at 64 bits).
    post(loop, client, path, json.dumps({**ROUTES[path], **replaced}).encode())


@pytest.mark.parametrize("path", PATHS)
@FUZZ
@given(text=st.text(max_size=200), cut=st.integers(min_value=0, max_value=400))
def test_mangled_json_text(
    loop: asyncio.AbstractEventLoop, client: httpx.AsyncClient, path: str, text: str, cut: int
) -> None:
    """A valid body, its text spliced with arbitrary characters (surrogates escaped too)."""
    raw = orjson.dumps(ROUTES[path]).decode()
    cut = min(cut, len(raw))
    spliced = raw[:cut] + text + raw[cut:]
    post(loop, client, path, spliced.encode("utf-8", "surrogatepass"))
