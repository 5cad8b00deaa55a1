"""The admin UI end to end, in a real headless Chromium (Playwright on Debian's chromium)
against a real gateway process, a fake OpenAI upstream behind it and the official `openai`
SDK as the API client.

The tests sign in, create a key and use it, find the request in the log with its cost,
revoke the key and see the next call refused, watch a streamed playground reply, and check
that a virtual key's sign-in sees only its own usage; and the security properties a browser
can show: the cookie's flags, a forged cross-site POST refused, user-supplied names
rendered as text, a revoked key's session ended.

Each page is photographed as it is visited. With `LLM_GATEWAY_SCREENSHOTS=docs/images`
(`make screenshots`) the pictures land in the docs; otherwise in a temporary folder.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import openai
import pytest

from tests.conftest import MASTER_KEY, UPSTREAM_KEY, GatewayFactory
from tests.fakes.openai import FakeOpenAI
from tests.fakes.server import FakeServer
from tests.gateway import ROOT, GatewayProcess

ADMIN = {"authorization": f"Bearer {MASTER_KEY}"}
PRICED = {"input_per_mtok": 2.5, "output_per_mtok": 10}
XSS = '<script>window.__xss = 1</script><img src=x onerror="window.__xss = 2">'
DESKTOP = {"width": 1280, "height": 860}
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def gateway(
    fake_openai: tuple[FakeOpenAI, FakeServer],
    start_gateway: GatewayFactory,
    tmp_path_factory: pytest.TempPathFactory,
) -> GatewayProcess:
    deployment = {"provider": "fake", "pricing": PRICED}
    config = {
        "providers": {
            "fake": {"type": "openai", "base_url": f"{fake_openai[1].url}/v1", "api_key": UPSTREAM_KEY}
        },
        "models": {
            "ui-chat": {"deployments": [{**deployment, "model": "upstream-ui"}]},
            "ui-drip": {"deployments": [{**deployment, "model": "drip-120-12"}]},
        },
        "default_model": "ui-chat",
        "master_key": MASTER_KEY,
        "database_url": f"sqlite:///{tmp_path_factory.mktemp('ui') / 'gateway.db'}",
        "governance": {"spend_log": {"flush_interval": 0.1}},
    }
    return start_gateway(config)


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    chosen = os.environ.get("LLM_GATEWAY_SCREENSHOTS")
    folder = (ROOT / chosen) if chosen else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def page(chromium: Any) -> Iterator[Any]:
    context = chromium.new_context(viewport=DESKTOP)
    page = context.new_page()
    page.on("dialog", lambda dialog: dialog.accept())
    try:
        yield page
    finally:
        context.close()


def snap(page: Any, shots: Path, name: str, **options: Any) -> None:
    """Photograph the page (whole length) as docs/images/ui-<name>.png would show it."""
    path = shots / f"ui-{name}.png"
    page.screenshot(path=str(path), full_page=True, animations="disabled", **options)
    assert path.stat().st_size > 5_000, f"{name}: the screenshot is blank"


def sign_in(page: Any, gateway: GatewayProcess, key: str) -> None:
    page.goto(f"{gateway.url}/")
    page.wait_for_url(re.compile(r"/ui/login"))
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/ui/$"))


def new_key(gateway: GatewayProcess, name: str, **fields: Any) -> dict[str, Any]:
    created = httpx.post(
        f"{gateway.url}/admin/keys", json={"name": name, **fields}, headers=ADMIN, timeout=10
    )
    assert created.status_code == 201, created.text
    key: dict[str, Any] = created.json()
    return key


def chat(gateway: GatewayProcess, key: str, text: str, **extra: Any) -> Any:
    """One chat call under `key` (retried while a brand-new key reaches the index)."""
    with openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=key, max_retries=0, timeout=10) as client:
        deadline = time.monotonic() + 10
        while True:
            try:
                return client.chat.completions.with_raw_response.create(
                    model="ui-chat", messages=[{"role": "user", "content": text}], **extra
                )
            except openai.AuthenticationError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)


def logged(gateway: GatewayProcess, request_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 10
    while (
        found := httpx.get(f"{gateway.url}/admin/requests/{request_id}", headers=ADMIN)
    ).status_code == 404:
        assert time.monotonic() < deadline, f"{request_id} never reached the request log"
        time.sleep(0.1)
    row: dict[str, Any] = found.json()
    return row


def test_sign_in_create_a_key_use_it_find_it_in_the_log_and_revoke_it(
    gateway: GatewayProcess, page: Any, shots: Path
) -> None:
    page.goto(f"{gateway.url}/")
    page.wait_for_url(re.compile(r"/ui/login"))
    snap(page, shots, "login")
    sign_in(page, gateway, MASTER_KEY)

    page.goto(f"{gateway.url}/ui/teams")
    page.get_by_label("Name", exact=True).fill("Checkout")
    page.get_by_label("Id (optional").fill("checkout")
    page.get_by_label("Budget (USD)").fill("50")
    page.get_by_label("Budget period").select_option("monthly")
    page.get_by_role("button", name="Create team").click()
    page.wait_for_url(re.compile(r"/ui/teams/checkout"))

    page.goto(f"{gateway.url}/ui/keys/new")
    page.get_by_label("Name", exact=True).fill("checkout-web")
    page.get_by_label("Team").select_option("checkout")
    page.get_by_label("Requests per minute").fill("600")
    page.get_by_label("Budget (USD)").fill("10")
    page.get_by_label("Budget period").select_option("daily")
    snap(page, shots, "key-new")
    page.get_by_role("button", name="Create key").click()
    secret = page.get_by_test_id("secret").inner_text().strip()
    assert secret.startswith("sk-gw-")
    assert "shown once" in page.content()
    snap(page, shots, "key-created", mask=[page.get_by_test_id("secret")])

    answer = chat(gateway, secret, "hello from the ui test", user="customer-42")
    request_id = answer.headers["x-request-id"]
    row = logged(gateway, request_id)
    assert row["cost_usd"] is not None and float(row["cost_usd"]) > 0

    page.goto(f"{gateway.url}/ui/requests")
    listed = page.locator("tr", has=page.locator(f"a[href='/ui/requests/{request_id}']"))
    assert listed.count() == 1
    assert "$0.0000" in listed.inner_text() and "unpriced" not in listed.inner_text()
    snap(page, shots, "requests")
    listed.locator("a").first.click()
    page.wait_for_url(re.compile(f"/ui/requests/{request_id}"))
    detail = page.content()
    assert "upstream-ui" in detail or "ui-chat" in detail
    assert page.locator("svg.timeline").count() == 1
    snap(page, shots, "request")

    page.goto(f"{gateway.url}/ui/keys")
    page.get_by_role("link", name="checkout-web").click()
    assert page.get_by_test_id("state").inner_text() == "active"
    snap(page, shots, "key")
    page.get_by_role("button", name="Revoke").click()
    page.wait_for_load_state()
    assert page.get_by_test_id("state").inner_text() == "revoked"
    with (
        openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=secret, max_retries=0) as client,
        pytest.raises(openai.AuthenticationError, match="revoked"),
    ):
        client.chat.completions.create(model="ui-chat", messages=[{"role": "user", "content": "again"}])

    for name, path in [("keys", "/ui/keys"), ("teams", "/ui/teams"), ("usage", "/ui/usage?group_by=model"),
                       ("deployments", "/ui/deployments"), ("config", "/ui/config")]:  # fmt: skip
        page.goto(f"{gateway.url}{path}")
        assert page.locator("h1").count() == 1, path
        snap(page, shots, name)
    page.goto(f"{gateway.url}/ui/?range=hour")
    assert page.get_by_test_id("spend-today").inner_text() != "$0.000000"
    snap(page, shots, "overview")
    page.set_viewport_size(PHONE)
    snap(page, shots, "overview-phone")


def test_the_playground_streams_a_reply_through_the_api(
    gateway: GatewayProcess, page: Any, shots: Path
) -> None:
    sign_in(page, gateway, MASTER_KEY)
    page.goto(f"{gateway.url}/ui/playground")
    page.get_by_label("Model").select_option("ui-drip")
    page.get_by_label("System prompt").fill("Be brief.")
    page.get_by_label("Max tokens").fill("64")
    page.get_by_label("Message").fill("stream to me")
    page.get_by_role("button", name="Send").click()
    reply = page.get_by_test_id("reply")
    seen: list[str] = []
    deadline = time.monotonic() + 15
    while "Done" not in page.locator("#reply-status").inner_text():
        assert time.monotonic() < deadline, "the reply never finished"
        text = reply.inner_text()
        if text and (not seen or text != seen[-1]):
            seen.append(text)
        time.sleep(0.05)
    final = reply.inner_text()
    assert final.count("drip") >= 10
    partial = [text for text in seen if 0 < len(text) < len(final)]
    assert partial, f"the reply arrived all at once, not streamed: {seen}"
    page.get_by_test_id("cost").wait_for(timeout=10_000)
    assert page.get_by_test_id("cost").inner_text().startswith("$")
    snap(page, shots, "playground")


def test_a_virtual_key_sees_only_its_own_usage(gateway: GatewayProcess, chromium: Any, shots: Path) -> None:
    mine, theirs = new_key(gateway, "self-service"), new_key(gateway, "someone-else")
    my_request = chat(gateway, mine["key"], "mine").headers["x-request-id"]
    their_request = chat(gateway, theirs["key"], "theirs").headers["x-request-id"]
    logged(gateway, my_request), logged(gateway, their_request)
    context = chromium.new_context(viewport=DESKTOP, color_scheme="dark")
    page = context.new_page()
    try:
        sign_in(page, gateway, mine["key"])
        page.goto(f"{gateway.url}/ui/requests")
        listing = page.content()
        assert my_request in listing and their_request not in listing
        assert theirs["id"] not in listing
        page.goto(f"{gateway.url}/ui/requests/{their_request}")
        assert "Not found" in page.content()
        page.goto(f"{gateway.url}/ui/usage?group_by=key")
        usage = page.content()
        assert mine["id"] in usage and theirs["id"] not in usage
        page.goto(f"{gateway.url}/ui/keys")
        page.wait_for_url(re.compile(f"/ui/keys/{mine['id']}"))
        assert page.get_by_role("button", name="Revoke").count() == 0
        snap(page, shots, "self-service-dark")
        for admin_only in ("/ui/deployments", "/ui/config", "/ui/teams"):
            response = page.goto(f"{gateway.url}{admin_only}")
            assert response is not None and response.status == 403, admin_only
    finally:
        context.close()


def test_the_session_cookie_is_httponly_strict_and_holds_no_key(gateway: GatewayProcess, page: Any) -> None:
    sign_in(page, gateway, MASTER_KEY)
    (cookie,) = [c for c in page.context.cookies() if c["name"] == "gw_session"]
    assert cookie["httpOnly"] is True and cookie["sameSite"] == "Strict" and cookie["path"] == "/ui"
    assert cookie["expires"] > time.time()
    assert MASTER_KEY not in cookie["value"]
    assert page.evaluate("document.cookie") == "", "scripts can read the session"
    stored = page.evaluate("JSON.stringify(localStorage) + JSON.stringify(sessionStorage)")
    assert MASTER_KEY not in stored and "sk-" not in stored, stored


def test_a_forged_cross_site_post_is_refused(gateway: GatewayProcess, page: Any) -> None:
    victim = new_key(gateway, "victim")
    sign_in(page, gateway, MASTER_KEY)
    forged = (
        f'<form id="f" method="post" action="{gateway.url}/ui/keys/{victim["id"]}/revoke">'
        '<input name="csrf" value="guess"></form><script>document.getElementById("f").submit()</script>'
    )
    page.route("http://attacker.test/**", lambda route: route.fulfill(body=forged, content_type="text/html"))
    page.goto("http://attacker.test/")
    page.wait_for_load_state()
    time.sleep(0.3)
    shown = httpx.get(f"{gateway.url}/admin/keys/{victim['id']}", headers=ADMIN).json()
    assert shown["revoked_at"] is None, "a cross-site form revoked a key"


def test_user_supplied_names_render_as_text(gateway: GatewayProcess, page: Any) -> None:
    key = new_key(gateway, XSS, metadata={"note": XSS})
    request_id = chat(gateway, key["key"], XSS, user=XSS).headers["x-request-id"]
    logged(gateway, request_id)
    sign_in(page, gateway, MASTER_KEY)
    for path in ("/ui/keys", f"/ui/keys/{key['id']}", "/ui/requests", f"/ui/requests/{request_id}",
                 "/ui/usage?group_by=user", "/ui/usage?group_by=key"):  # fmt: skip
        page.goto(f"{gateway.url}{path}")
        assert page.evaluate("window.__xss") is None, f"{path} ran injected script"
        assert "<script>window.__xss" not in page.content().replace("&lt;script&gt;", ""), path
    page.goto(f"{gateway.url}/ui/keys")
    assert page.get_by_text(XSS).count() >= 1


def test_a_revoked_keys_session_ends(gateway: GatewayProcess, page: Any) -> None:
    key = new_key(gateway, "short-lived")
    deadline = time.monotonic() + 10
    while (
        httpx.get(f"{gateway.url}/v1/models", headers={"authorization": f"Bearer {key['key']}"}).status_code
        != 200
    ):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    sign_in(page, gateway, key["key"])
    page.goto(f"{gateway.url}/ui/requests")
    assert page.url.endswith("/ui/requests")
    assert httpx.delete(f"{gateway.url}/admin/keys/{key['id']}", headers=ADMIN).status_code == 200
    page.goto(f"{gateway.url}/ui/requests")
    page.wait_for_url(re.compile(r"/ui/login"))
    assert "revoked" in page.content()
    assert [c for c in page.context.cookies() if c["name"] == "gw_session"] == []
