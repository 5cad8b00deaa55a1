"""The governance targets: llm-gateway with a virtual key on every request (rpm, tpm and a
budget, set high enough never to bind, so each request is counted, held and settled but
none refused), in its two storage modes, measured beside the governance-off gateway.

- SQLite: keys and the spend log in a fresh SQLite file, counters in process.
- PostgreSQL + Redis: keys and the spend log in a fresh PostgreSQL database
  (`llmgw_bench`, dropped and made again on each run), counters, slots and holds in
  Redis under their own prefix (cleared on each run).

The harness creates the key through the admin API once the gateway answers (the master
key is the harness's API key) and sends every request of that target with it.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import urllib.request

import orjson

POSTGRES_ADMIN_URL = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
POSTGRES_DATABASE = "llmgw_bench"
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379")
REDIS_PREFIX = "llmgw-bench:"

VIRTUAL_KEY = {
    "name": "bench",
    "rpm": 1_000_000_000,
    "tpm": 1_000_000_000_000,
    "budget_usd": 1_000_000,
    "budget_period": "monthly",
}
"""Limits on the path that never refuse: the cost of counting, not of being refused."""


def sqlite_env() -> dict[str, str]:
    folder = tempfile.mkdtemp(prefix="llm-gateway-bench-")
    return {"BENCH_DATABASE_URL": f"sqlite:///{folder}/governance.db"}


def postgres_redis_env(suffix: str = "") -> dict[str, str]:
    """A fresh database and an empty Redis prefix, and the settings that point at them;
    `suffix` names another pair, for a second target running beside the first."""
    database, prefix = f"{POSTGRES_DATABASE}{suffix}", f"{REDIS_PREFIX.rstrip(':')}{suffix}:"
    asyncio.run(_fresh_postgres(database))
    _clear_redis(prefix)
    base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0]
    return {
        "BENCH_DATABASE_URL": f"{base}/{database}",
        "BENCH_REDIS_URL": REDIS_URL,
        "BENCH_REDIS_PREFIX": prefix,
    }


def baseline_postgres_redis_env() -> dict[str, str]:
    """`postgres_redis_env` for the baseline checkout's target (`run.py --baseline`)."""
    return postgres_redis_env("_baseline")


async def _fresh_postgres(database: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(POSTGRES_ADMIN_URL)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        await connection.execute(f'CREATE DATABASE "{database}"')
    finally:
        await connection.close()


def _clear_redis(prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        stale = list(client.scan_iter(f"{prefix}*"))
        if stale:
            client.delete(*stale)
    finally:
        client.close()


def create_key(port: int, master_key: str) -> str:
    """The secret of a new virtual key, made through the gateway's admin API."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/admin/keys",
        data=orjson.dumps(VIRTUAL_KEY),
        headers={"authorization": f"Bearer {master_key}", "content-type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        secret: str = orjson.loads(response.read())["key"]
    return secret
