"""The admin API in-process (ASGI transport, in-memory SQLite): master key only, strict
input (400 naming the field, never a 500, whatever is sent), secrets shown once."""

from __future__ import annotations

import asyncio
import json
import urllib.parse
from collections.abc import Iterator
from contextlib import AsyncExitStack
from typing import Any

import httpx2 as httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.stubs import mock_config
from tests.unit.api.asgi import gateway

MASTER = "sk-admin-master"
AUTH = {"authorization": f"Bearer {MASTER}"}
FIELDS = [
    "name", "id", "team_id", "models", "rpm", "tpm", "max_parallel", "budget_usd", "budget_period",
    "max_hold_usd", "expires_at", "metadata", "blocked", "grace_seconds",
]  # fmt: skip
SQLISH = [
    "0001-01-01T00:00:00+14:00",
    "9999-12-31T23:59:59-14:00",
    "1969-12-31",
    "2030-01-01T00:00:00Z",
    "' OR 1=1 --",
    "'; DROP TABLE keys; --",
    "%",
    "_",
    "\\",
    "\x00",
    "\ud800",
    "🙂" * 300,
    "a" * 5000,
]


async def test_only_the_master_key_opens_the_admin_api() -> None:
    async with gateway(mock_config(master_key=MASTER)) as client:
        created = (await client.post("/admin/keys", json={"name": "app"}, headers=AUTH)).json()
        for headers in ({}, {"authorization": "Bearer wrong"}, {"authorization": f"Bearer {created['key']}"}):
            response = await client.get("/admin/keys", headers=headers)
            assert response.status_code == 401, headers
            assert response.json()["error"]["type"] == "authentication_error"
    async with gateway(mock_config()) as client:
        response = await client.get("/admin/keys", headers=AUTH)
        assert response.status_code == 403 and "master_key" in response.json()["error"]["message"]


async def test_the_secret_is_in_the_create_and_rotate_responses_only() -> None:
    async with gateway(mock_config(master_key=MASTER)) as client:
        created = await client.post("/admin/keys", json={"name": "app", "rpm": 5}, headers=AUTH)
        assert created.status_code == 201
        body = created.json()
        secret, key_id = body["key"], body["id"]
        assert secret.startswith("sk-gw-") and body["key_hint"].endswith(secret[-4:])
        rotated = (await client.post(f"/admin/keys/{key_id}/rotate", json={}, headers=AUTH)).json()
        assert rotated["key"] != secret and rotated["id"] == key_id
        texts = [
            (await client.get("/admin/keys", headers=AUTH)).text,
            (await client.get(f"/admin/keys/{key_id}", headers=AUTH)).text,
            (await client.patch(f"/admin/keys/{key_id}", json={"rpm": 6}, headers=AUTH)).text,
            (await client.delete(f"/admin/keys/{key_id}", headers=AUTH)).text,
        ]
        for text in texts:
            assert secret not in text and rotated["key"] not in text and '"key":' not in text


async def test_bad_input_is_a_400_naming_the_field() -> None:
    async with gateway(mock_config(master_key=MASTER)) as client:
        cases: list[tuple[str, str, dict[str, Any], str]] = [
            ("POST", "/admin/keys", {"name": "a", "bogus": 1}, "bogus"),
            ("POST", "/admin/keys", {"name": "a", "rpm": -1}, "rpm"),
            ("POST", "/admin/keys", {"name": "a", "rpm": "5"}, "rpm"),
            ("POST", "/admin/keys", {"name": "a", "budget_usd": -0.5}, "budget_usd"),
            ("POST", "/admin/keys", {"name": "a", "budget_period": "hourly"}, "budget_period"),
            ("POST", "/admin/keys", {"name": "a", "models": "gpt-4o"}, "models"),
            ("POST", "/admin/keys", {"name": "a\x00b"}, "name"),
            ("POST", "/admin/keys", {}, "name"),
            ("POST", "/admin/teams", {"name": "t", "id": "has space"}, "id"),
            ("POST", "/admin/keys", {"name": "a", "metadata": {"guardrails": "pii"}}, "metadata"),
            ("POST", "/admin/teams", {"name": "t", "metadata": {"guardrails": [1]}}, "metadata"),
        ]
        for method, path, body, field in cases:
            response = await client.request(method, path, json=body, headers=AUTH)
            assert response.status_code == 400, (body, response.text)
            assert response.json()["error"]["param"] == field, (body, response.text)
        response = await client.get("/admin/keys", params={"limit": 201}, headers=AUTH)
        assert response.status_code == 400 and response.json()["error"]["param"] == "limit"
        response = await client.patch("/admin/keys/key_nope", json={"rpm": 1}, headers=AUTH)
        assert response.status_code == 404


async def test_teams_conflicts_and_pages() -> None:
    async with gateway(mock_config(master_key=MASTER)) as client:
        for index in range(5):
            response = await client.post(
                "/admin/teams", json={"id": f"t{index}", "name": f"T{index}"}, headers=AUTH
            )
            assert response.status_code == 201
        duplicate = await client.post("/admin/teams", json={"name": "T1"}, headers=AUTH)
        assert duplicate.status_code == 409
        await client.post("/admin/keys", json={"name": "k", "team_id": "t1"}, headers=AUTH)
        assert (await client.delete("/admin/teams/t1", headers=AUTH)).status_code == 409
        assert (await client.delete("/admin/teams/t2", headers=AUTH)).status_code == 200
        assert (await client.get("/admin/teams/t2", headers=AUTH)).status_code == 404
        first = (await client.get("/admin/teams", params={"limit": 2}, headers=AUTH)).json()
        assert [t["id"] for t in first["data"]] == ["t0", "t1"] and first["next_cursor"]
        rest = await client.get(
            "/admin/teams", params={"limit": 2, "cursor": first["next_cursor"]}, headers=AUTH
        )
        assert [t["id"] for t in rest.json()["data"]] == ["t3", "t4"]


async def test_the_admin_routes_are_in_the_openapi_schema() -> None:
    async with gateway(mock_config(master_key=MASTER)) as client:
        paths = (await client.get("/openapi.json", headers=AUTH)).json()["paths"]  # master key only
    for path in (
        "/admin/keys",
        "/admin/keys/{key_id}",
        "/admin/keys/{key_id}/rotate",
        "/admin/teams",
        "/admin/templates",
    ):
        assert path in paths
    assert "/admin/deployments" in paths and "/v1/me" in paths


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats()
    | st.text()
    | st.sampled_from(SQLISH),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
bodies = (
    st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=10), json_values, max_size=6) | json_values
)
ROUTES = [
    ("POST", "/admin/keys"),
    ("PATCH", "/admin/keys/{key}"),
    ("POST", "/admin/keys/{key}/rotate"),
    ("DELETE", "/admin/keys/{key}"),
    ("POST", "/admin/teams"),
    ("PATCH", "/admin/teams/{team}"),
    ("GET", "/admin/keys"),
    ("GET", "/admin/teams"),
    ("POST", "/admin/templates"),
    ("GET", "/admin/templates/{key}"),
    ("DELETE", "/admin/templates/{key}"),
    ("DELETE", "/admin/templates/{key}/versions/{team}"),
]


@pytest.fixture(scope="module")
def admin_client() -> Iterator[tuple[asyncio.AbstractEventLoop, httpx.AsyncClient, dict[str, str]]]:
    """One running app for every hypothesis example (a lifespan each would take minutes)."""
    loop = asyncio.new_event_loop()
    stack = AsyncExitStack()
    client = loop.run_until_complete(stack.enter_async_context(gateway(mock_config(master_key=MASTER))))
    team = loop.run_until_complete(client.post("/admin/teams", json={"id": "t1", "name": "T"}, headers=AUTH))
    key = loop.run_until_complete(client.post("/admin/keys", json={"name": "k"}, headers=AUTH))
    ids = {"team": team.json()["id"], "key": key.json()["id"]}
    yield loop, client, ids
    loop.run_until_complete(stack.aclose())
    loop.close()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    route=st.sampled_from(ROUTES),
    body=bodies,
    raw_id=st.one_of(st.none(), st.text(max_size=20), st.sampled_from(SQLISH)),
    query=st.dictionaries(
        st.sampled_from(["limit", "cursor", "name", "team_id", "include_revoked"]),
        st.text(max_size=30) | st.integers(-(10**6), 10**6).map(str) | st.sampled_from(SQLISH),
        max_size=3,
    ),
)
def test_no_input_makes_the_admin_api_fail(
    admin_client: tuple[asyncio.AbstractEventLoop, httpx.AsyncClient, dict[str, str]],
    route: tuple[str, str],
    body: Any,
    raw_id: str | None,
    query: dict[str, str],
) -> None:
    loop, client, ids = admin_client
    method, template = route
    key_id = ids["key"] if raw_id is None else urllib.parse.quote(raw_id, safe="", errors="replace")
    path = template.format(key=key_id, team=ids["team"] if raw_id is None else key_id)
    content = json.dumps(body, allow_nan=True).encode() if method in ("POST", "PATCH") else None
    if method == "GET" and query:
        # A URL cannot carry a lone surrogate (the server decodes bytes with replacement).
        path += "?" + urllib.parse.urlencode(
            {k: v.encode(errors="replace").decode() for k, v in query.items()}
        )
    response = loop.run_until_complete(client.request(method, path, content=content, headers=AUTH))
    assert response.status_code < 500, (method, path, body, response.text)
    if 300 <= response.status_code < 400:  # `/admin/keys/` redirects to `/admin/keys`
        return
    payload = response.json()
    if response.status_code >= 400:
        assert isinstance(payload["error"]["message"], str)
    elif method == "GET" or method == "PATCH" or method == "DELETE":
        assert '"key":' not in response.text


template_bodies = st.fixed_dictionaries(
    {
        "name": st.text(max_size=12) | st.sampled_from(["faq", "a.b-c:1"]),
        "messages": st.lists(
            st.fixed_dictionaries(
                {
                    "role": st.sampled_from(["system", "user", "assistant", "robot"]),
                    "content": st.text(max_size=30),
                }
            ),
            max_size=3,
        ),
    },
    optional={
        "version": st.text(max_size=70) | st.integers(),
        "variables": st.lists(st.text(max_size=8) | json_values, max_size=3),
        "parameters": st.dictionaries(st.text(max_size=8), json_values, max_size=3),
        "model": json_values,
    },
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=template_bodies, name=st.text(max_size=20), version=st.text(max_size=20))
def test_no_template_makes_the_admin_api_fail(
    admin_client: tuple[asyncio.AbstractEventLoop, httpx.AsyncClient, dict[str, str]],
    body: dict[str, Any],
    name: str,
    version: str,
) -> None:
    """Bodies that nearly validate (NUL characters, lone surrogates, huge integers inside)
    and any name or version in the path: a 4xx naming the problem or a success, never a 500."""
    loop, client, _ = admin_client
    content = json.dumps(body, allow_nan=True).encode()
    quoted = urllib.parse.quote(name, safe="", errors="replace") or "x"
    quoted_version = urllib.parse.quote(version, safe="", errors="replace") or "v"
    requests = [
        ("POST", "/admin/templates", content),
        ("GET", f"/admin/templates/{quoted}", None),
        (
            "DELETE",
            f"/admin/templates/{quoted}/versions/{quoted_version}",
            None,
        ),
        ("DELETE", f"/admin/templates/{quoted}", None),
    ]
    headers = {**AUTH, "content-type": "application/json"}
    for method, path, data in requests:
        response = loop.run_until_complete(client.request(method, path, content=data, headers=headers))
        assert response.status_code < 500, (method, path, body, response.text)


ONE_MESSAGE = b'"name": "t", "messages": [{"role": "user", "content": "x"}]'


@pytest.mark.parametrize(
    ("raw", "named"),
    [
        (b'{"name": "t", "messages": [{"role": "user", "content": "a\\u0000b"}]}', "NUL"),
        (b'{"name": "t", "messages": [{"role": "user", "content": "a\\ud800b"}]}', "surrogates"),
        (b"{" + ONE_MESSAGE + b', "parameters": {"n": 2e400}}', "finite"),
        (b"{" + ONE_MESSAGE + b', "parameters": {"n": 11805916207174113034240}}', "64 bits"),
    ],
)
def test_a_template_the_database_cannot_keep_is_a_400(
    admin_client: tuple[asyncio.AbstractEventLoop, httpx.AsyncClient, dict[str, str]], raw: bytes, named: str
) -> None:
    loop, client, _ = admin_client
    headers = {**AUTH, "content-type": "application/json"}
    response = loop.run_until_complete(client.post("/admin/templates", content=raw, headers=headers))
    assert response.status_code == 400 and named in response.json()["error"]["message"], response.text
