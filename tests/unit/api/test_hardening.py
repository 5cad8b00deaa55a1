"""What every per-request route refuses before routing, in its own dialect: bodies nested
too deep, bodies that are not JSON by their Content-Type, fields that would steer the
upstream request; and, before any route, a `Host` the gateway does not serve. Also: CORS
only when configured, no slash redirects, OpenAPI only for the master key."""

from __future__ import annotations

import logging
from typing import Any

import httpx2
import orjson
import pytest

from llm_gateway.api.body import MAX_DEPTH, UPSTREAM_FIELDS, nesting_depth
from llm_gateway.app import warn_if_open
from llm_gateway.core.config import ServerSettings
from llm_gateway.core.loader import build_config
from llm_gateway.providers.registry import settings_model
from tests.stubs import gateway_config
from tests.unit.api.asgi import running
from tests.unit.api.inprocess import MOCK, ROUTES, error_of, gateway

JSON = {"content-type": "application/json"}
KEY = "sk-test-master"


def nested(depth: int) -> Any:
    value: Any = "x"
    for level in range(depth):
        value = [value] if level % 2 else {"k": value}
    return value


@pytest.mark.parametrize("path", list(ROUTES))
@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 255, 600, 1000])
async def test_deep_nesting_is_a_400_naming_the_limit(path: str, depth: int) -> None:
    # Built as bytes: orjson itself writes at most 254 levels (which is the bug's cause).
    inner = b'{"k":[' * (depth // 2) + b'"x"' + b"]}" * (depth // 2)
    raw = orjson.dumps(ROUTES[path])[:-1] + b',"metadata":' + inner + b"}"
    async with gateway() as client:
        response = await client.post(path, content=raw, headers=JSON)
    assert response.status_code == 400
    assert f"more than {MAX_DEPTH} levels" in error_of(response, path)["message"]


@pytest.mark.parametrize("depth", [1025, 5000])
async def test_deeper_than_the_parser_reads_is_a_400(depth: int) -> None:
    raw = b'{"model":"mock","messages":' + b"[" * depth + b"]" * depth + b"}"
    async with gateway() as client:
        response = await client.post("/v1/chat/completions", content=raw, headers=JSON)
    assert response.status_code == 400


def test_depth_counts_arrays_and_objects() -> None:
    assert nesting_depth({}) == 1
    assert nesting_depth({"a": [1, {"b": []}]}) == 4
    assert nesting_depth(nested(MAX_DEPTH)) == MAX_DEPTH


async def test_brackets_inside_strings_do_not_count() -> None:
    body = {**ROUTES["/v1/chat/completions"], "user": "[{" * 1000}
    async with gateway() as client:
        response = await client.post("/v1/chat/completions", content=orjson.dumps(body), headers=JSON)
    assert response.status_code == 200


async def test_nesting_at_the_limit_is_served() -> None:
    body = {**ROUTES["/v1/chat/completions"], "metadata": nested(MAX_DEPTH - 1)}
    assert nesting_depth(body) == MAX_DEPTH
    async with gateway() as client:
        response = await client.post("/v1/chat/completions", content=orjson.dumps(body), headers=JSON)
    assert response.status_code == 200


@pytest.mark.parametrize("path", list(ROUTES))
@pytest.mark.parametrize(
    "content_type",
    [None, "text/plain", "text/plain;charset=UTF-8", "application/x-www-form-urlencoded",
     "multipart/form-data; boundary=x", "application/jsonx", "text/json"],
)  # fmt: skip
async def test_a_body_not_sent_as_json_is_a_415(path: str, content_type: str | None) -> None:
    headers = {"content-type": content_type} if content_type else {}
    async with gateway() as client:
        response = await client.post(path, content=orjson.dumps(ROUTES[path]), headers=headers)
    assert response.status_code == 415
    error = error_of(response, path)
    assert "Content-Type: application/json" in error["message"]


@pytest.mark.parametrize("path", list(ROUTES))
@pytest.mark.parametrize(
    "content_type", ["application/json", "Application/JSON; charset=utf-8", "application/vnd.api+json"]
)
async def test_json_content_types_are_served(path: str, content_type: str) -> None:
    async with gateway() as client:
        response = await client.post(
            path, content=orjson.dumps(ROUTES[path]), headers={"content-type": content_type}
        )
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("path", list(ROUTES))
@pytest.mark.parametrize("field", UPSTREAM_FIELDS)
async def test_fields_that_steer_the_upstream_are_refused(path: str, field: str) -> None:
    body = {**ROUTES[path], field: "https://attacker.example" if "base" in field else {"x": "y"}}
    async with gateway() as client:
        response = await client.post(path, content=orjson.dumps(body), headers=JSON)
    assert response.status_code == 400
    error = error_of(response, path)
    assert f"'{field}'" in error["message"]
    if path not in ("/v1/messages", "/v1/messages/count_tokens"):
        assert error["param"] == field


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        ("127.0.0.1:8000", True),
        ("localhost", True),
        ("LOCALHOST:1234", True),
        ("[::1]:8000", True),
        ("attacker.example", False),
        ("attacker.example:8000", False),
        ("127.0.0.1.attacker.example", False),
        ("localhost.attacker.example", False),
        ("", False),
    ],
)
async def test_a_loopback_gateway_serves_only_loopback_host_names(host: str, allowed: bool) -> None:
    async with gateway() as client:
        chat = await client.post(
            "/v1/messages", content=orjson.dumps(ROUTES["/v1/messages"]), headers={**JSON, "host": host}
        )
        health = await client.get("/health", headers={"host": host})
    if allowed:
        assert (chat.status_code, health.status_code) == (200, 200)
    else:
        assert (chat.status_code, health.status_code) == (421, 421)
        assert error_of(chat, "/v1/messages")["type"] == "invalid_request_error"
        assert error_of(health, "/health")["code"] == "host_not_allowed"
        assert "attacker" not in chat.text


async def test_a_public_bind_serves_any_host_unless_configured() -> None:
    async with gateway(server={"host": "0.0.0.0"}) as client:
        assert (await client.get("/health", headers={"host": "gateway.internal"})).status_code == 200
    hosts = ["gateway.example.com", "*.internal", "10.0.0.5:8000"]
    async with gateway(server={"host": "0.0.0.0", "allowed_hosts": hosts}) as client:
        for host, status in [
            ("gateway.example.com:443", 200),
            ("a.b.internal", 200),
            ("10.0.0.5:8000", 200),
            ("10.0.0.5:9000", 421),
            ("internal", 421),
            ("evil.example.com", 421),
        ]:
            assert (await client.get("/health", headers={"host": host})).status_code == status, host


PREFLIGHT = {
    "origin": "https://app.example",
    "access-control-request-method": "POST",
    "access-control-request-headers": "authorization, content-type",
}


async def test_cors_is_off_unless_configured() -> None:
    async with gateway() as client:
        preflight = await client.options("/v1/chat/completions", headers=PREFLIGHT)
        chat = await client.post(
            "/v1/chat/completions",
            content=orjson.dumps(ROUTES["/v1/chat/completions"]),
            headers={**JSON, "origin": "https://app.example"},
        )
    assert "access-control-allow-origin" not in preflight.headers
    assert "access-control-allow-origin" not in chat.headers


async def test_configured_cors_answers_preflights_for_its_origins() -> None:
    async with gateway(server={"cors": {"allow_origins": ["https://app.example"]}}) as client:
        preflight = await client.options("/v1/chat/completions", headers=PREFLIGHT)
        other = await client.options(
            "/v1/chat/completions", headers={**PREFLIGHT, "origin": "https://evil.example"}
        )
        chat = await client.post(
            "/v1/chat/completions",
            content=orjson.dumps(ROUTES["/v1/chat/completions"]),
            headers={**JSON, "origin": "https://app.example"},
        )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "https://app.example"
    assert "authorization" in preflight.headers["access-control-allow-headers"].lower()
    assert other.status_code == 400
    assert chat.headers["access-control-allow-origin"] == "https://app.example"
    assert "x-request-id" in chat.headers["access-control-expose-headers"]


@pytest.mark.parametrize("header", ["x-api-key", "anthropic-version", "x-goog-api-key"])
async def test_cors_defaults_allow_each_front_doors_key_header(header: str) -> None:
    """A browser page using the Anthropic or Gemini SDK sends its key in its own header."""
    async with gateway(server={"cors": {"allow_origins": ["https://app.example"]}}) as client:
        preflight = await client.options(
            "/v1/chat/completions", headers={**PREFLIGHT, "access-control-request-headers": header}
        )
    assert preflight.status_code == 200
    assert header in preflight.headers["access-control-allow-headers"].lower()


@pytest.mark.parametrize("path", ["/health/", "/ready/", "/v1/chat/completions/", "/admin/"])
async def test_a_trailing_slash_is_a_plain_404(path: str) -> None:
    async with gateway() as client:
        for method in ("GET", "POST"):
            response = await client.request(method, path, headers={**JSON, "host": "localhost"})
            assert response.status_code == 404, (method, path)
            assert "location" not in response.headers
            assert response.json()["error"]


async def test_openapi_is_off_without_a_master_key() -> None:
    async with gateway() as client:
        assert (await client.get("/openapi.json")).status_code == 404
        assert (await client.get("/docs")).status_code == 404


async def test_openapi_needs_the_master_key() -> None:
    async with gateway(master_key=KEY) as client:
        anonymous = await client.get("/openapi.json")
        wrong = await client.get("/openapi.json", headers={"authorization": "Bearer nope"})
        master = await client.get("/openapi.json", headers={"authorization": f"Bearer {KEY}"})
    assert (anonymous.status_code, wrong.status_code, master.status_code) == (401, 401, 200)
    assert master.json()["info"]["title"] == "llm-gateway"


async def test_openapi_can_be_turned_off() -> None:
    async with gateway(master_key=KEY, server={"openapi": False}) as client:
        response = await client.get("/openapi.json", headers={"authorization": f"Bearer {KEY}"})
    assert response.status_code == 404


@pytest.mark.parametrize(
    ("host", "master_key", "warned"),
    [("0.0.0.0", None, True), ("10.1.2.3", None, True), ("127.0.0.1", None, False),
     ("localhost", None, False), ("::1", None, False), ("0.0.0.0", KEY, False)],
)  # fmt: skip
def test_serving_without_a_master_key_off_loopback_is_warned(
    host: str, master_key: str | None, warned: bool, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "llm_gateway")
    config = build_config(
        {**MOCK, "master_key": master_key, "server": {"host": host}}, settings_model, "<t>", {}
    )
    warn_if_open(config)
    assert ("without a master key" in caplog.text) is warned


def test_default_allowed_hosts_follow_the_bind_address() -> None:
    assert ServerSettings().hosts() == ["localhost", "127.0.0.1", "[::1]"]
    assert ServerSettings(host="::1").hosts() == ["localhost", "127.0.0.1", "[::1]"]
    assert ServerSettings(host="0.0.0.0").hosts() == ["*"]
    assert ServerSettings(host="0.0.0.0", allowed_hosts=["a.example"]).hosts() == ["a.example"]


async def test_ready_reports_each_models_healthy_deployments() -> None:
    config = gateway_config(
        {
            "providers": {"mock": {"type": "mock"}},
            "models": {
                "two": {"deployments": [{"provider": "mock"}, {"provider": "mock", "model": "other"}]},
                "one": {"deployments": [{"provider": "mock"}]},
            },
            "database_url": "sqlite:///:memory:",
        }
    )
    async with running(config) as app:
        board = app.state.runtime.executor.health
        first = app.state.runtime.catalog.groups[0].targets[0]
        board.of(first).breaker.failure(board.clock(), trip_for=60)
        transport = httpx2.ASGITransport(app=app)
        async with httpx2.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            response = await client.get("/ready")
    assert response.status_code == 200  # reported, not judged
    name = app.state.runtime.catalog.groups[0].name
    expected = {"two": {"healthy": 2, "deployments": 2}, "one": {"healthy": 1, "deployments": 1}}
    expected[name]["healthy"] -= 1
    assert response.json()["deployments"] == expected
