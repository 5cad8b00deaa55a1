"""The spend log in the gateway's SQLite database, end to end: a virtual key, chat requests
through the official openai SDK (streamed and not) against the fake upstream, SIGTERM, and
the file holds one row per request with the upstream's token counts; `/admin/usage` agrees."""

from __future__ import annotations

import sqlite3
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx2
import openai

from tests.conftest import GatewayFactory, openai_config
from tests.fakes.openai import FakeOpenAI
from tests.fakes.server import FakeServer

MASTER = "sk-itest-master"
ADMIN = {"authorization": f"Bearer {MASTER}"}
PROMPTS = ["one two three", "four five", "six seven eight nine ten"]


def config(upstream: str, database: Path) -> dict[str, Any]:
    settings = openai_config(upstream, {"gpt-test": "upstream-gpt"}, master_key=MASTER)
    settings["database_url"] = f"sqlite:///{database}"
    settings["models"]["gpt-test"]["deployments"][0]["pricing"] = {"input_per_mtok": 1, "output_per_mtok": 2}
    settings["governance"] = {"spend_log": {"flush_interval": 60}}  # nothing written before shutdown
    return settings


def test_every_request_is_a_row_in_the_database(
    fake_openai: tuple[FakeOpenAI, FakeServer], start_gateway: GatewayFactory, tmp_path: Path
) -> None:
    database = tmp_path / "gateway.db"
    gateway = start_gateway(config(fake_openai[1].url, database))
    created = httpx2.post(f"{gateway.url}/admin/keys", json={"name": "app"}, headers=ADMIN, timeout=10)
    assert created.status_code == 201
    key = created.json()
    with openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=key["key"], max_retries=0, timeout=10) as sdk:
        for n, prompt in enumerate(PROMPTS):
            messages: list[Any] = [{"role": "user", "content": prompt}]
            if n % 2:
                chunks = list(
                    sdk.chat.completions.create(
                        model="gpt-test",
                        messages=messages,
                        stream=True,
                        stream_options={"include_usage": True},
                    )
                )
                assert chunks[-1].usage is not None
            else:
                reply = sdk.chat.completions.create(model="gpt-test", messages=messages)
                assert reply.usage is not None
    assert gateway.stop() is not None  # SIGTERM: the spend log is flushed on the way out

    with sqlite3.connect(database) as conn:
        rows = conn.execute(
            "SELECT key_id, model, prompt_tokens, completion_tokens, stream, status, cost_usd, estimated"
            " FROM spend_logs ORDER BY id"
        ).fetchall()
        daily = conn.execute("SELECT requests, prompt_tokens, completion_tokens FROM usage_daily").fetchall()
    # the fake counts words: the prompt's, and "echo: <prompt>" for the completion
    expected = [(len(p.split()), len(p.split()) + 1, n % 2) for n, p in enumerate(PROMPTS)]
    assert [(r[2], r[3], r[4]) for r in rows] == expected
    assert all(r[0] == key["id"] and r[1] == "gpt-test" and r[5] == 200 for r in rows)
    assert all(r[6] is not None and r[7] == 0 for r in rows)
    assert daily == [(3, sum(e[0] for e in expected), sum(e[1] for e in expected))]

    again = start_gateway(config(fake_openai[1].url, database))
    usage = httpx2.get(f"{again.url}/admin/usage", params={"group_by": "key"}, headers=ADMIN, timeout=10)
    assert usage.status_code == 200
    (group,) = usage.json()["data"]
    assert group["group"] == key["id"] and group["requests"] == 3
    assert (group["prompt_tokens"], group["completion_tokens"]) == daily[0][1:]
    assert group["unpriced_requests"] == 0 and group["errors"] == 0
    assert Decimal(group["cost_usd"]) == sum(Decimal(r[6]) for r in rows)  # exact, no float
    again.stop()
