"""`/admin/requests` and `/admin/requests/{id}` in-process: each request's metadata and its
attempts, filters, bounded pages, bad filters a 400 naming the field, unknown ids a 404."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.api.asgi import CHAT
from tests.unit.api.test_admin_usage import AUTH, priced_gateway, traffic


async def test_a_request_is_looked_up_by_id_with_its_attempt() -> None:
    async with priced_gateway() as (client, runtime):
        key = await traffic(client, runtime)
        answer = await client.post(
            "/v1/chat/completions",
            json=CHAT,
            headers={"authorization": f"Bearer {key['key']}", "x-request-id": "req-lookup-1"},
        )
        assert answer.status_code == 200 and answer.headers["x-request-id"] == "req-lookup-1"
        assert runtime.governance is not None and runtime.governance.spend is not None
        assert await runtime.governance.spend.flush()
        found = (await client.get("/admin/requests/req-lookup-1", headers=AUTH)).json()
        assert found["request_id"] == "req-lookup-1" and found["key_id"] == key["id"]
        assert found["status"] == 200 and found["error"] is None and found["model"] == "mock"
        assert found["prompt_tokens"] > 0 and not found["unpriced"] and float(found["cost_usd"]) > 0
        assert found["latency_s"] > 0 and found["attempt_count"] == 1
        (attempt,) = found["attempts"]
        assert attempt["outcome"] == "answered" and attempt["deployment"] == found["deployment"]
        assert attempt["provider"] == "mock" and attempt["error"] is None and attempt["group"] == "mock"
        missing = await client.get("/admin/requests/nobody", headers=AUTH)
        assert missing.status_code == 404
        assert (await client.get("/admin/requests/" + "x" * 300, headers=AUTH)).status_code == 404


async def test_requests_are_listed_filtered_and_paged() -> None:
    async with priced_gateway() as (client, runtime):
        key = await traffic(client, runtime)
        first = (await client.get("/admin/requests", params={"limit": 2}, headers=AUTH)).json()
        assert len(first["data"]) == 2 and first["next_cursor"]
        rest = await client.get(
            "/admin/requests", params={"limit": 2, "cursor": first["next_cursor"]}, headers=AUTH
        )
        second = rest.json()
        assert len(second["data"]) == 1 and second["next_cursor"] is None
        rows = first["data"] + second["data"]
        assert len({row["request_id"] for row in rows}) == 3
        assert all(row["key_id"] == key["id"] and len(row["attempts"]) == 1 for row in rows)
        for params in ({"key_id": key["id"]}, {"model": "mock"}, {"status": 200}):
            found = (await client.get("/admin/requests", params=params, headers=AUTH)).json()["data"]
            assert len(found) == 3, params
        for params in ({"key_id": "nobody"}, {"status": 500}, {"from": "2999-01-01T00:00:00Z"}):
            found = (await client.get("/admin/requests", params=params, headers=AUTH)).json()["data"]
            assert found == [], params


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": 201}, "limit"),
        ({"limit": 0}, "limit"),
        ({"cursor": "garbage"}, "cursor"),
        ({"status": "ok"}, "status"),
        ({"status": 99}, "status"),
        ({"from": "yesterday"}, "from"),
        ({"from": "2025-02-01T00:00:00Z", "to": "2025-01-01T00:00:00Z"}, "to"),
        ({"model": "a\x00"}, "model"),
        ({"key_id": "' OR 1=1 --"}, "key_id"),
        ({"team_id": "x" * 500}, "team_id"),
    ],
)
async def test_bad_filters_are_a_400_naming_the_field(params: dict[str, Any], field: str) -> None:
    async with priced_gateway() as (client, _):
        response = await client.get("/admin/requests", params=params, headers=AUTH)
        assert response.status_code == 400, response.text
        assert field in response.text


async def test_only_the_master_key_reads_requests() -> None:
    async with priced_gateway() as (client, runtime):
        key = await traffic(client, runtime)
        for headers in ({}, {"authorization": f"Bearer {key['key']}"}):
            for path in ("/admin/requests", "/admin/requests/anything"):
                assert (await client.get(path, headers=headers)).status_code == 401


async def test_a_streamed_request_logs_its_attempt_when_the_stream_ends() -> None:
    async with priced_gateway() as (client, runtime):
        key = await traffic(client, runtime)
        async with client.stream(
            "POST",
            "/v1/chat/completions",
            json={**CHAT, "stream": True},
            headers={"authorization": f"Bearer {key['key']}", "x-request-id": "req-stream-1"},
        ) as answer:
            assert answer.status_code == 200
            assert [line async for line in answer.aiter_lines() if line.startswith("data:")]
        assert runtime.governance is not None and runtime.governance.spend is not None
        assert await runtime.governance.spend.flush()
        found = (await client.get("/admin/requests/req-stream-1", headers=AUTH)).json()
        assert found["stream"] and found["ttft_s"] is not None
        (attempt,) = found["attempts"]
        assert attempt["outcome"] == "answered" and attempt["ttft_s"] is not None


SECRET = "sk-live-abcdefghijklmnop0123"


async def test_bodies_are_captured_redacted_only_for_keys_that_ask() -> None:
    async with priced_gateway() as (client, runtime):
        made = await client.post(
            "/admin/keys", json={"name": "loud", "metadata": {"log_bodies": True}}, headers=AUTH
        )
        assert made.status_code == 201, made.text
        quiet = (await client.post("/admin/keys", json={"name": "quiet"}, headers=AUTH)).json()
        body = {**CHAT, "messages": [{"role": "user", "content": f"my key is {SECRET}"}]}
        for key, rid in ((made.json(), "req-loud"), (quiet, "req-quiet")):
            answer = await client.post(
                "/v1/chat/completions",
                json=body,
                headers={"authorization": f"Bearer {key['key']}", "x-request-id": rid},
            )
            assert answer.status_code == 200
        assert runtime.governance is not None and runtime.governance.spend is not None
        assert await runtime.governance.spend.flush()
        loud = (await client.get("/admin/requests/req-loud", headers=AUTH)).json()
        assert loud["request_body"] and "my key is [redacted]" in loud["request_body"]
        assert SECRET not in loud["request_body"] and SECRET not in (loud["response_body"] or "")
        assert loud["response_body"] and "choices" in loud["response_body"]
        silent = (await client.get("/admin/requests/req-quiet", headers=AUTH)).json()
        assert silent["request_body"] is None and silent["response_body"] is None
        listed = (await client.get("/admin/requests", headers=AUTH)).json()["data"]
        assert all(item["request_body"] is None for item in listed)  # a page carries no bodies
