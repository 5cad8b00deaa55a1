"""The endpoint wrapper every per-request route runs through (api/endpoint.py), driven
in-process over the mock provider: authentication in each front door's error shape, the
body read once, the no-retry header, the `x-llm-gateway-*` and `x-request-id` headers, and
the hook chain run exactly once per request."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest

from llm_gateway.services.hooks import Hook
from tests.stubs import RecordingHook, mock_config
from tests.unit.api.asgi import (
    ANTHROPIC,
    DIALECTS,
    ROUTES,
    STREAMING,
    error_of,
    frames,
    gateway,
    leave_after_first_frame,
    running,
)

KEY = "sk-master-test"
PATHS = list(ROUTES)


@pytest.mark.parametrize("path", PATHS)
async def test_a_master_key_is_required_in_each_dialect(path: str) -> None:
    hook = RecordingHook()
    async with gateway(mock_config(master_key=KEY), hooks=[hook]) as client:
        missing = await client.post(path, json=ROUTES[path])
        wrong = await client.post(path, json=ROUTES[path], headers={"authorization": "Bearer sk-other"})
        bearer = await client.post(path, json=ROUTES[path], headers={"authorization": f"Bearer {KEY}"})
        api_key = await client.post(path, json=ROUTES[path], headers={"x-api-key": KEY})
    for refused in (missing, wrong):
        assert refused.status_code == 401
        error = error_of(path, refused)
        assert error["type"] == "authentication_error"
        if path not in ANTHROPIC:
            assert error["code"] == "invalid_api_key"
    assert "missing API key" in error_of(path, missing)["message"]
    assert error_of(path, wrong)["message"] == "invalid API key"
    assert (bearer.status_code, api_key.status_code) == (200, 200)
    assert hook.count("before") == 2  # the refused requests never reached the chain


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"", "request body is empty"),
        (b'{"model": ', "request body is not valid JSON"),
        (b"[1, 2]", "request body must be a JSON object"),
    ],
    ids=["empty", "invalid", "not-an-object"],
)
async def test_an_empty_or_invalid_body_is_a_400(path: str, raw: bytes, message: str) -> None:
    hook = RecordingHook()
    async with gateway(hooks=[hook]) as client:
        response = await client.post(path, content=raw, headers={"content-type": "application/json"})
    assert response.status_code == 400
    error = error_of(path, response)
    assert error["type"] == "invalid_request_error"
    assert message in error["message"]
    assert hook.seen == []


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize(("header", "retries"), [(None, True), ("1", False), ("true", False), ("no", True)])
async def test_the_no_retry_header_is_read_on_every_route(
    path: str, header: str | None, retries: bool
) -> None:
    hook = RecordingHook()
    headers = {"x-llm-gateway-no-retry": header} if header is not None else {}
    async with gateway(hooks=[hook]) as client:
        response = await client.post(path, json=ROUTES[path], headers=headers)
    assert response.status_code == 200
    [ctx] = hook.contexts
    assert ctx.retries is retries
    assert ctx.dialect == DIALECTS[path]


@pytest.mark.parametrize("path", [p for p in PATHS if p != "/v1/messages/count_tokens"])
async def test_the_served_headers_name_the_deployment(path: str) -> None:
    async with gateway() as client:
        response = await client.post(path, json=ROUTES[path])
    assert response.status_code == 200
    served = {k: v for k, v in response.headers.items() if k.startswith("x-llm-gateway-")}
    assert served == {
        "x-llm-gateway-provider": "mock",
        "x-llm-gateway-model": "mock",
        "x-llm-gateway-deployment": "mock/0:mock/mock",
        "x-llm-gateway-attempts": "1",
    }


@pytest.mark.parametrize("path", list(STREAMING))
async def test_a_stream_has_the_served_headers_too(path: str) -> None:
    async with gateway() as client:
        response = await client.post(path, json=STREAMING[path])
    assert response.headers["x-llm-gateway-deployment"] == "mock/0:mock/mock"
    assert response.headers["x-llm-gateway-attempts"] == "1"
    assert response.headers["cache-control"] == "no-cache"


async def test_an_estimate_made_without_an_upstream_says_zero_attempts() -> None:
    async with gateway() as client:
        response = await client.post("/v1/messages/count_tokens", json=ROUTES["/v1/messages/count_tokens"])
    served = {k: v for k, v in response.headers.items() if k.startswith("x-llm-gateway-")}
    assert served == {"x-llm-gateway-attempts": "0"}


@pytest.mark.parametrize("path", PATHS)
async def test_the_request_id_is_echoed_or_made(path: str) -> None:
    hook = RecordingHook()
    async with gateway(hooks=[hook]) as client:
        given = await client.post(path, json=ROUTES[path], headers={"x-request-id": "req-42"})
        made = await client.post(path, json=ROUTES[path])
        refused = await client.post(path, content=b"", headers={"x-request-id": "req-43"})
    assert given.headers["x-request-id"] == "req-42"
    assert re.fullmatch(r"[0-9a-f]{32}", made.headers["x-request-id"])
    assert [ctx.request_id for ctx in hook.contexts] == ["req-42", made.headers["x-request-id"]]
    assert refused.headers["x-request-id"] == "req-43"
    if path in ANTHROPIC:
        assert refused.json()["request_id"] == "req-43"


CHAIN_CASES = [
    pytest.param(path, body, stream, id=f"{path}{'-streamed' if stream else ''}")
    for path in ("/v1/chat/completions", "/v1/messages", "/v1/embeddings", "/api/chat")
    for body, stream in ((ROUTES[path], False), (STREAMING.get(path), True))
    if body is not None
]


@pytest.mark.parametrize(("path", "body", "stream"), CHAIN_CASES)
async def test_the_hook_chain_runs_once_per_request(path: str, body: dict[str, Any], stream: bool) -> None:
    hook = RecordingHook()
    async with gateway(hooks=[hook]) as client:
        first = await client.post(path, json=body)
        second = await client.post(path, json=body)
    assert (first.status_code, second.status_code) == (200, 200)
    assert hook.count("before") == 2
    assert hook.count("after") == (0 if stream else 2)
    assert hook.count("on_end") == 2
    for end in hook.ends:
        assert end.error is None
        assert end.usage is not None and end.usage["prompt_tokens"] == 2  # "hello there"
    if stream:
        assert frames(first) and frames(second)


class Broken(Hook):
    async def before(self, ctx: Any, call: Any) -> None:
        raise RuntimeError("a bug in a hook")


@pytest.mark.parametrize("path", PATHS)
async def test_an_unexpected_error_is_a_500_that_names_the_request(path: str) -> None:
    async with gateway(hooks=[Broken()]) as client:
        response = await client.post(path, json=ROUTES[path], headers={"x-request-id": "req-7"})
    assert response.status_code == 500
    error = error_of(path, response)
    assert error["type"] == "api_error"
    assert error["message"] == "internal gateway error (request id req-7)"
    assert "a bug" not in response.text


@pytest.mark.parametrize("path", list(STREAMING))
async def test_a_client_leaving_midstream_ends_the_hooks_once(path: str) -> None:
    """The disconnect cancels the request while it sends, outside the stream: only the
    endpoint's own close of the pipeline's stream ends the hooks (and the upstream)."""
    hook = RecordingHook()
    async with running(hooks=[hook]) as app:
        sent = await leave_after_first_frame(app, path, STREAMING[path])
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    assert sent[0]["status"] == 200
    [end] = hook.ends
    assert isinstance(end.error, asyncio.CancelledError)
