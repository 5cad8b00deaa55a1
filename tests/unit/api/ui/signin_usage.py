"""Signing a test client in to the UI, as a browser's same-site form does."""

from __future__ import annotations

import re

import httpx2 as httpx

MASTER = "sk-ui-master-0123456789"
FORM = {"content-type": "application/x-www-form-urlencoded"}


def origin(client: httpx.AsyncClient) -> dict[str, str]:
    """The header a same-site form carries: this site's own origin."""
    url = client.base_url
    port = f":{url.port}" if url.port else ""
    return {"origin": f"{url.scheme}://{url.host}{port}"}


async def sign_in(client: httpx.AsyncClient, key: str = MASTER) -> None:
    """Sign in with `key` (the master key or a virtual key's secret); the cookie stays in `client`."""
    answer = await client.post(
        "/ui/login", content=f"key={key}&next=/ui/", headers={**FORM, **origin(client)}
    )
    assert answer.status_code == 303, answer.text
    assert "gw_session" in client.cookies


def csrf_of(html: str) -> str:
    """The CSRF token a page's forms carry."""
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found is not None, "no CSRF field on the page"
    return found.group(1)
