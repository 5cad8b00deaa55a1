"""Signing in to the UI in-process, as a browser's sign-in form does (same-site, urlencoded),
and the UI gateways the page tests share."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx2 as httpx

from llm_gateway.runtime import Runtime
from tests.stubs import mock_config
from tests.unit.api.asgi import running

MASTER = "sk-ui-master"
AUTH = {"authorization": f"Bearer {MASTER}"}
ORIGIN = "http://127.0.0.1:8000"
PRICED = {
    "mock": {"deployments": [{"provider": "mock", "pricing": {"input_per_mtok": 1, "output_per_mtok": 2}}]}
}


@asynccontextmanager
async def ui_gateway(**config: Any) -> AsyncIterator[tuple[httpx.AsyncClient, Runtime]]:
    """The app (model `mock`, priced, a master key) and a client whose cookie jar keeps the
    session; `config` adds or replaces top-level keys."""
    async with running(mock_config(**{"master_key": MASTER, "models": PRICED, **config})) as app:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as client:
            yield client, app.state.runtime


async def sign_in(client: httpx.AsyncClient, key: str) -> None:
    """Sign `client` in with `key` (the master key or a virtual key); its jar keeps the cookie."""
    client.cookies.clear()
    answer = await client.post(
        "/ui/login",
        content=f"key={key}&next=/ui/",
        headers={"content-type": "application/x-www-form-urlencoded", "origin": ORIGIN},
    )
    assert answer.status_code == 303, answer.text
    assert answer.headers["location"] == "/ui/" and "gw_session" in client.cookies


async def new_key(client: httpx.AsyncClient, name: str, **fields: Any) -> dict[str, Any]:
    """A virtual key made through the admin API: its `id` and its `key` (the secret)."""
    made = await client.post("/admin/keys", json={"name": name, **fields}, headers=AUTH)
    assert made.status_code == 201, made.text
    key: dict[str, Any] = made.json()
    return key
