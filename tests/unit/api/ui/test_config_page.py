"""`/ui/config` in-process: the effective config with no secret in the page, the reload
state, and "Reload now": a same-site form with the session's CSRF token, master key only."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx2 as httpx
import yaml
from fastapi import FastAPI

from llm_gateway.reloader import ConfigSource
from llm_gateway.runtime import Runtime
from tests.stubs import gateway_config, mock_config
from tests.unit.api.asgi import running
from tests.unit.api.ui.signin_usage import FORM, MASTER, csrf_of, origin, sign_in

PLANTED = {
    "provider": "sk-planted-provider-0123456789",
    "database": "dbpass-planted-42",
    "redis": "redispass-planted-43",
    "metrics": "metrics-token-planted-44",
    "header": "hdr-planted-45",
    "master": MASTER,
}


def planted_config() -> Any:
    return gateway_config(
        {
            "providers": {
                "mock": {"type": "mock"},
                "up": {"type": "openai", "api_key": PLANTED["provider"], "base_url": "http://127.0.0.1:9/v1"},
            },
            "models": {"mock": {"deployments": [{"provider": "mock"}, {"provider": "up"}]}},
            "master_key": MASTER,
            "database_url": f"postgresql://gateway:{PLANTED['database']}@db.example:5432/gw",
            "redis_url": f"redis://:{PLANTED['redis']}@cache.example:6379/0",
            "metrics": {"token": PLANTED["metrics"]},
            "tracing": {
                "otlp_endpoint": "http://collector.example:4318",
                "headers": {"x-api-key": PLANTED["header"]},
            },
        }
    )


@asynccontextmanager
async def ui(**extra: Any) -> AsyncIterator[tuple[httpx.AsyncClient, FastAPI]]:
    async with running(mock_config(**extra)) as app:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as client:
            yield client, app


async def test_the_config_page_shows_no_secret() -> None:
    async with ui(master_key=MASTER) as (client, app):
        runtime: Runtime = app.state.runtime
        runtime.config = planted_config()  # what a gateway started from this file would show
        await sign_in(client)
        page = await client.get("/ui/config")
        assert page.status_code == 200
        for name, secret in PLANTED.items():
            assert secret not in page.text, name
        assert "db.example" in page.text and "cache.example" in page.text and "x-api-key" in page.text
        assert "<pre" in page.text and page.text.count("**********") >= 4  # masked, not dropped
        assert 'data-test="generation">1<' in page.text and "none since the process started" in page.text
        assert "the embedded default" in page.text  # started without a file


def _write(path: Path, **extra: Any) -> None:
    data = {
        "providers": {"mock": {"type": "mock"}},
        "models": {
            "mock": {"deployments": [{"provider": "mock"}]},
            "second": {"deployments": [{"provider": "mock"}]},
        },
        "database_url": "sqlite:///:memory:",
        "master_key": MASTER,
        **extra,
    }
    path.write_text(yaml.safe_dump(data))


async def test_reload_needs_the_csrf_token_and_shows_how_it_went(tmp_path: Path) -> None:
    file = tmp_path / "gateway.yaml"
    _write(file)
    async with ui(master_key=MASTER) as (client, app):
        app.state.reloader.source = ConfigSource(str(file))
        await sign_in(client)
        token = csrf_of((await client.get("/ui/config")).text)
        refused = await client.post("/ui/config/reload", content="", headers={**FORM, **origin(client)})
        assert refused.status_code == 403 and "security token" in refused.text
        forged = await client.post(
            "/ui/config/reload", content=f"csrf={token}", headers={**FORM, "origin": "http://evil.example"}
        )
        assert forged.status_code == 403 and "another site" in forged.text
        assert app.state.reloader.state.generation == 1
        done = await client.post(
            "/ui/config/reload", content=f"csrf={token}", headers={**FORM, **origin(client)}
        )
        assert done.status_code == 200 and "now serving generation 2" in done.text
        assert "second" in done.text and str(file) in done.text
        assert app.state.runtime.catalog.group("second") is not None
        file.write_text("models: [not, a, mapping\n")
        failed = await client.post(
            "/ui/config/reload", content=f"csrf={token}", headers={**FORM, **origin(client)}
        )
        assert failed.status_code == 400 and "Reload failed, nothing changed" in failed.text
        assert '<span class="badge bad">failed</span>' in failed.text
        assert 'data-test="generation">2<' in failed.text


async def test_a_virtual_key_may_not_see_or_reload_the_config() -> None:
    async with ui(master_key=MASTER) as (client, app):
        identities = app.state.runtime.identities
        _, secret = await identities.create_key({"name": "app"})
        await sign_in(client, secret)
        page = await client.get("/ui/config")
        assert page.status_code == 403 and "<pre" not in page.text
        token = csrf_of((await client.get("/ui/usage")).text)
        reload = await client.post(
            "/ui/config/reload", content=f"csrf={token}", headers={**FORM, **origin(client)}
        )
        assert reload.status_code == 403 and app.state.reloader.state.generation == 1


async def test_the_read_only_viewer_sees_the_config_but_cannot_reload() -> None:
    async with ui() as (client, app):
        page = await client.get("/ui/config")
        assert page.status_code == 200 and "Reloading needs the master key." in page.text
        assert 'action="/ui/config/reload"' not in page.text
        reload = await client.post("/ui/config/reload", content="csrf=", headers={**FORM, **origin(client)})
        assert reload.status_code == 403 and "Read-only" in reload.text
        assert app.state.reloader.state.generation == 1
