"""`/ui/deployments` in-process: every deployment's live health, the table alone for htmx's
refresh (which shows what changed since), names escaped, the master key's page only."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx2 as httpx

from llm_gateway.core.errors import UpstreamUnavailable
from llm_gateway.runtime import Runtime
from tests.stubs import mock_config
from tests.unit.api.asgi import running
from tests.unit.api.ui.signin_usage import MASTER, sign_in

SCRIPT = "<script>alert(1)</script>"
MODELS = {
    "mock": {"deployments": [{"provider": "mock", "rpm": 60}]},
    SCRIPT: {"deployments": [{"provider": "mock"}]},
}


@asynccontextmanager
async def ui() -> AsyncIterator[tuple[httpx.AsyncClient, Runtime]]:
    async with running(mock_config(master_key=MASTER, models=MODELS)) as app:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as client:
            yield client, app.state.runtime


async def test_the_page_lists_every_deployment_and_refreshes_its_table() -> None:
    async with ui() as (client, _):
        await sign_in(client)
        page = await client.get("/ui/deployments")
        assert page.status_code == 200
        html = page.text
        assert 'hx-get="/ui/deployments/table"' in html and 'hx-trigger="every 2s"' in html
        assert 'hx-swap="innerHTML"' in html and "<caption" in html and "Updated" in html
        assert '<span class="badge closed">closed</span>' in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and SCRIPT not in html
        assert "0 / 60" in html  # rpm used of the limit


async def test_the_table_partial_shows_what_changed() -> None:
    async with ui() as (client, runtime):
        await sign_in(client)
        before = await client.get("/ui/deployments/table", headers={"hx-request": "true"})
        assert before.status_code == 200
        assert (
            "<html" not in before.text
            and "<table" in before.text
            and "UpstreamUnavailable" not in before.text
        )
        board = runtime.executor.health
        target = runtime.catalog.group("mock").targets[0]
        health = board.of(target)
        now = board.clock()
        for _ in range(6):
            health.failed(now, 0.05, UpstreamUnavailable("down", provider="mock"))
        health.begin(now)
        after = await client.get("/ui/deployments/table", headers={"hx-request": "true"})
        text = after.text
        assert '<span class="badge open">open</span>' in text
        assert text.count("UpstreamUnavailable") == 5  # the newest five only
        assert "1 / 60" in text  # the request begun counts against the rpm limit
        assert 'data-test="open-circuits">1<' in text
        health.end(now)


async def test_a_virtual_key_and_no_session_are_refused() -> None:
    async with ui() as (client, runtime):
        identities = runtime.identities
        assert identities is not None
        _, secret = await identities.create_key({"name": "app"})
        unsigned = await client.get("/ui/deployments/table", headers={"hx-request": "true"})
        assert unsigned.status_code == 401 and unsigned.headers["hx-redirect"].startswith("/ui/login")
        await sign_in(client, secret)
        for path in ("/ui/deployments", "/ui/deployments/table"):
            answer = await client.get(path)
            assert answer.status_code == 403 and "Master key only" in answer.text
            assert "<table" not in answer.text
