"""`/admin/usage`, `/admin/spend/logs` and `/v1/me`'s spend in-process: sums from the daily
rollup, bounded pages, bad filters a 400 naming the field, spend from the budget counters."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx2 as httpx
import pytest

from llm_gateway.runtime import Runtime
from tests.stubs import mock_config
from tests.unit.api.asgi import CHAT, running

MASTER = "sk-admin-master"
AUTH = {"authorization": f"Bearer {MASTER}"}
PRICED = {
    "mock": {"deployments": [{"provider": "mock", "pricing": {"input_per_mtok": 1, "output_per_mtok": 2}}]}
}


@asynccontextmanager
async def priced_gateway() -> AsyncIterator[tuple[httpx.AsyncClient, Runtime]]:
    async with running(mock_config(master_key=MASTER, models=PRICED)) as app:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            yield client, app.state.runtime


async def traffic(client: httpx.AsyncClient, runtime: Runtime) -> dict[str, Any]:
    key = (
        await client.post(
            "/admin/keys", json={"name": "app", "budget_usd": "1", "budget_period": "monthly"}, headers=AUTH
        )
    ).json()
    for user in ("alice", "bob", "alice"):
        answer = await client.post(
            "/v1/chat/completions",
            json={**CHAT, "user": user},
            headers={"authorization": f"Bearer {key['key']}"},
        )
        assert answer.status_code == 200
    assert runtime.governance is not None and runtime.governance.spend is not None
    assert await runtime.governance.spend.flush()
    return key


async def test_usage_is_summed_per_group() -> None:
    async with priced_gateway() as (client, runtime):
        key = await traffic(client, runtime)
        by_key = (await client.get("/admin/usage", params={"group_by": "key"}, headers=AUTH)).json()["data"]
        assert len(by_key) == 1 and by_key[0]["group"] == key["id"] and by_key[0]["requests"] == 3
        assert by_key[0]["prompt_tokens"] > 0 and by_key[0]["unpriced_requests"] == 0
        assert float(by_key[0]["cost_usd"]) > 0 and by_key[0]["errors"] == 0
        by_user = (await client.get("/admin/usage", params={"group_by": "user"}, headers=AUTH)).json()["data"]
        assert {(row["group"], row["requests"]) for row in by_user} == {("alice", 2), ("bob", 1)}
        none = await client.get(
            "/admin/usage", params={"group_by": "day", "from": "2000-01-01", "to": "2000-01-02"}, headers=AUTH
        )
        assert none.json() == {"data": []}


async def test_logs_are_paged() -> None:
    async with priced_gateway() as (client, runtime):
        key = await traffic(client, runtime)
        first = (await client.get("/admin/spend/logs", params={"limit": 2}, headers=AUTH)).json()
        assert len(first["data"]) == 2 and first["next_cursor"]
        rest = await client.get(
            "/admin/spend/logs", params={"limit": 2, "cursor": first["next_cursor"]}, headers=AUTH
        )
        second = rest.json()
        assert len(second["data"]) == 1 and second["next_cursor"] is None
        rows = first["data"] + second["data"]
        assert len({row["request_id"] for row in rows}) == 3 and all(
            row["key_id"] == key["id"] for row in rows
        )
        other = await client.get("/admin/spend/logs", params={"key_id": "nobody"}, headers=AUTH)
        assert other.json()["data"] == []


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/admin/usage", {}, "group_by"),
        ("/admin/usage", {"group_by": "planet"}, "group_by"),
        ("/admin/usage", {"group_by": "key", "from": "yesterday"}, "from"),
        ("/admin/usage", {"group_by": "key", "from": "2025-02-01", "to": "2025-01-01"}, "to"),
        ("/admin/usage", {"group_by": "key", "key_id": "' OR 1=1 --"}, "key_id"),
        ("/admin/spend/logs", {"limit": 201}, "limit"),
        ("/admin/spend/logs", {"limit": 0}, "limit"),
        ("/admin/spend/logs", {"cursor": "garbage"}, "cursor"),
        ("/admin/spend/logs", {"cursor": "\x00"}, "cursor"),
        ("/admin/spend/logs", {"from": "0001-01-01T00:00:00+14:00"}, "from"),
        ("/admin/spend/logs", {"model": "a\x00"}, "model"),
        ("/admin/spend/logs", {"team_id": "x" * 500}, "team_id"),
    ],
)
async def test_bad_filters_are_a_400_naming_the_field(path: str, params: dict[str, Any], field: str) -> None:
    async with priced_gateway() as (client, _):
        response = await client.get(path, params=params, headers=AUTH)
        assert response.status_code == 400, response.text
        assert field in response.text


async def test_only_the_master_key_reads_usage() -> None:
    async with priced_gateway() as (client, runtime):
        key = await traffic(client, runtime)
        for headers in ({}, {"authorization": f"Bearer {key['key']}"}):
            for path in ("/admin/usage?group_by=key", "/admin/spend/logs"):
                assert (await client.get(path, headers=headers)).status_code == 401


async def test_me_shows_the_budget_spent_and_remaining() -> None:
    async with priced_gateway() as (client, runtime):
        key = await traffic(client, runtime)
        me = (await client.get("/v1/me", headers={"authorization": f"Bearer {key['key']}"})).json()
        (scope,) = me["scopes"]
        logged = (await client.get("/admin/usage", params={"group_by": "key"}, headers=AUTH)).json()["data"]
        assert scope["spent_usd"] == pytest.approx(float(logged[0]["cost_usd"])) and scope["spent_usd"] > 0
        assert scope["remaining_usd"] == pytest.approx(1 - scope["spent_usd"])
