"""The UI's own security in-process: nothing without a session, sessions that cannot be
forged, extended or kept past their key, changes only from this site with the session's
CSRF token, and the embedded default's read-only loopback mode."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx2 as httpx
import pytest

from llm_gateway.api.ui.session import COOKIE, Sessions
from tests.stubs import mock_config
from tests.unit.api.asgi import running

MASTER = "sk-ui-master"
ORIGIN = {"origin": "http://127.0.0.1"}
FORM = {"content-type": "application/x-www-form-urlencoded", **ORIGIN}
PAGES = [
    "/ui/", "/ui/?range=day", "/ui/?range=week", "/ui/keys", "/ui/keys/new", "/ui/teams", "/ui/playground",
    "/ui/usage", "/ui/requests", "/ui/deployments", "/ui/config",
]  # fmt: skip


@asynccontextmanager
async def client(
    config: Any = None, client_host: str = "127.0.0.1", scheme: str = "http"
) -> AsyncIterator[httpx.AsyncClient]:
    async with running(config or mock_config(master_key=MASTER, governance={})) as app:
        transport = httpx.ASGITransport(app=app, client=(client_host, 50000))
        async with httpx.AsyncClient(transport=transport, base_url=f"{scheme}://127.0.0.1") as http:
            yield http


async def sign_in(http: httpx.AsyncClient, key: str = MASTER) -> str:
    """Sign in; the session's CSRF token."""
    response = await http.post("/ui/login", content=f"key={key}&next=/ui/", headers=FORM)
    assert response.status_code == 303, response.text
    page = await http.get("/ui/")
    assert page.status_code == 200
    found = re.search(r'"x-csrf-token": "([^"]+)"', page.text)
    assert found is not None
    return found.group(1)


async def new_key(http: httpx.AsyncClient, **fields: Any) -> dict[str, Any]:
    created = await http.post(
        "/admin/keys", json={"name": "k", **fields}, headers={"authorization": f"Bearer {MASTER}"}
    )
    assert created.status_code == 201
    body: dict[str, Any] = created.json()
    return body


async def test_no_page_answers_without_a_session() -> None:
    async with client() as http:
        for path in PAGES:
            response = await http.get(path)
            assert response.status_code == 303, path
            assert response.headers["location"].startswith("/ui/login?next="), path
        htmx = await http.get("/ui/deployments/table", headers={"hx-request": "true"})
        assert htmx.status_code == 401 and htmx.headers["hx-redirect"].startswith("/ui/login")
        for path in ("/ui/keys", "/ui/teams", "/ui/config/reload", "/ui/keys/key_x/revoke"):
            assert (await http.post(path, content="a=b", headers=FORM)).status_code == 401, path
        chat = await http.post("/ui/playground/chat", json={"model": "mock", "messages": []}, headers=ORIGIN)
        assert chat.status_code == 401 and chat.json()["error"]["type"] == "authentication_error"
        assert (await http.get("/ui/playground/cost/abc")).status_code == 303


async def test_the_root_redirects_to_the_ui_and_api_paths_keep_json_404s() -> None:
    async with client() as http:
        root = await http.get("/")
        assert root.status_code == 307 and root.headers["location"] == "/ui/"
        missing = await http.get("/v1/nothing-here")
        assert missing.status_code == 404 and missing.json()["error"]
    async with client(mock_config(master_key=MASTER, ui={"enabled": False})) as http:
        assert (await http.get("/")).status_code == 404
        assert (await http.get("/ui/")).status_code == 404
        assert (await http.get("/ui/login")).status_code == 404


async def test_the_session_cookie_flags_and_contents() -> None:
    async with client() as http:
        response = await http.post("/ui/login", content=f"key={MASTER}", headers=FORM)
        cookie = response.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/ui" in cookie
        assert "Max-Age=28800" in cookie and "Secure" not in cookie
        assert MASTER not in cookie
    async with client(scheme="https") as http:
        response = await http.post(
            "/ui/login", content=f"key={MASTER}", headers={**FORM, "origin": "https://127.0.0.1"}
        )
        assert "Secure" in response.headers["set-cookie"]


async def test_a_wrong_key_is_refused_and_the_secret_never_echoed() -> None:
    async with client() as http:
        for key in ("nope", "sk-gw-" + "A" * 40, ""):
            response = await http.post("/ui/login", content=f"key={key}", headers=FORM)
            assert response.status_code == 401 and COOKIE not in response.headers.get("set-cookie", "")
            if key:
                assert key not in response.text


async def test_forged_tampered_expired_and_foreign_sessions_are_refused() -> None:
    async with client() as http:
        await sign_in(http)
        value = http.cookies[COOKIE]
        payload, signature = value.split(".")
        for forged in (f"{payload}.{signature[:-2]}xx", f"{payload[:-2]}AA.{signature}", "garbage", "a.b.c"):
            http.cookies.clear()
            http.cookies.set(COOKIE, forged, path="/ui")
            assert (await http.get("/ui/keys")).status_code == 303, forged
        other = Sessions("another-master-key", 60).issue("master")
        http.cookies.clear()
        http.cookies.set(COOKIE, other, path="/ui")
        assert (await http.get("/ui/keys")).status_code == 303
        expired = Sessions(MASTER, 5, clock=lambda: 0.0).issue("master")
        http.cookies.clear()
        http.cookies.set(COOKIE, expired, path="/ui")
        response = await http.get("/ui/keys")
        assert response.status_code == 303 and "expired" in response.headers["location"]


async def test_a_change_needs_this_site_and_the_sessions_token() -> None:
    async with client() as http:
        csrf = await sign_in(http)
        body = f"csrf={csrf}&name=team-a"
        for headers in (
            {**FORM, "origin": "http://evil.example"},
            {**FORM, "origin": "null"},
            {"content-type": FORM["content-type"], "sec-fetch-site": "cross-site"},
            {"content-type": FORM["content-type"]},  # neither Origin nor Sec-Fetch-Site
        ):
            assert (await http.post("/ui/teams", content=body, headers=headers)).status_code == 403, headers
        for token in ("", "wrong", csrf[:-1]):
            response = await http.post("/ui/teams", content=f"csrf={token}&name=team-a", headers=FORM)
            assert response.status_code == 403 and "security token" in response.text
        assert (await http.post("/ui/teams", content=body, headers=FORM)).status_code == 303
        other = await sign_in(http)
        assert other != csrf, "each sign-in has its own token"
        stale = await http.post("/ui/teams", content=f"csrf={csrf}&name=team-b", headers=FORM)
        assert stale.status_code == 403


async def test_a_key_session_ends_when_the_key_is_blocked_revoked_or_rotated() -> None:
    async with client() as http:
        admin = {"authorization": f"Bearer {MASTER}"}
        for end in ("block", "revoke", "rotate"):
            key = await new_key(http)
            await sign_in(http, key["key"])
            assert (await http.get("/ui/requests")).status_code == 200
            if end == "block":
                await http.patch(f"/admin/keys/{key['id']}", json={"blocked": True}, headers=admin)
            elif end == "revoke":
                await http.delete(f"/admin/keys/{key['id']}", headers=admin)
            else:
                await http.post(f"/admin/keys/{key['id']}/rotate", json={"grace_seconds": 0}, headers=admin)
            response = await http.get("/ui/requests")
            assert response.status_code == 303, end
            assert "session" in response.headers["location"] and "ended" in response.headers["location"]
            assert COOKIE not in http.cookies


async def test_a_key_session_may_not_administer() -> None:
    async with client() as http:
        key = await new_key(http)
        csrf = await sign_in(http, key["key"])
        for path in ("/ui/teams", "/ui/deployments", "/ui/config", "/ui/keys/new"):
            assert (await http.get(path)).status_code == 403, path
        response = await http.post(f"/ui/keys/{key['id']}/revoke", content=f"csrf={csrf}", headers=FORM)
        assert response.status_code == 403
        other = await new_key(http)
        assert (await http.get(f"/ui/keys/{other['id']}")).status_code == 404
        own = await http.get("/ui/keys")
        assert own.status_code == 303 and own.headers["location"] == f"/ui/keys/{key['id']}"


async def test_a_key_session_uses_the_playground_as_that_key() -> None:
    async with client() as http:
        key = await new_key(http, models=["not-mock"])
        csrf = await sign_in(http, key["key"])
        page = await http.get("/ui/playground")
        assert "may use no configured model" in page.text
        body = {"model": "mock", "messages": [{"role": "user", "content": "hi"}]}
        refused = await http.post("/ui/playground/chat", json=body, headers={**ORIGIN, "x-csrf-token": csrf})
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "model_not_allowed"
        no_token = await http.post("/ui/playground/chat", json=body, headers=ORIGIN)
        assert no_token.status_code == 403


async def test_without_a_master_key_the_ui_is_read_only_and_loopback_only() -> None:
    async with client(mock_config()) as http:
        page = await http.get("/ui/")
        assert page.status_code == 200 and "read-only" in page.text and "master_key" in page.text
        assert "not being recorded" in page.text, "without governance the page says why it is empty"
        assert (await http.get("/ui/login")).status_code == 303
        response = await http.post("/ui/teams", content="name=x", headers=FORM)
        assert response.status_code == 403 and "Read-only" in response.text
        assert "New key" not in (await http.get("/ui/keys")).text
    async with client(mock_config(), client_host="10.1.2.3") as http:
        response = await http.get("/ui/")
        assert response.status_code == 403 and "master key" in response.text.lower()


@pytest.mark.parametrize("path", ["/ui/", "/ui/keys", "/ui/login"])
async def test_pages_carry_the_security_headers(path: str) -> None:
    async with client() as http:
        if path != "/ui/login":
            await sign_in(http)
        response = await http.get(path)
        assert response.status_code == 200
        policy = response.headers["content-security-policy"]
        assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
        assert "'unsafe-inline'" not in policy
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["cache-control"] == "no-store"
        assert '<meta charset="utf-8">' in response.text
        assert 'src="http' not in response.text and 'href="http' not in response.text, "nothing from a CDN"


async def test_static_assets_ship_in_the_package() -> None:
    async with client() as http:
        for asset in ("htmx.min.js", "app.js", "app.css"):
            response = await http.get(f"/ui/static/{asset}")
            assert response.status_code == 200 and len(response.content) > 1000, asset
        assert (await http.get("/ui/static/../session.py")).status_code == 404
