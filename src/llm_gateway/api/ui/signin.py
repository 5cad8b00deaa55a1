"""`/ui/login` and `/ui/logout`, and `/` → `/ui/`.

Sign-in takes the master key or a virtual key once, checks it as the API would (a revoked,
blocked, expired or rotated-out key is refused with the reason), and sets the session cookie
(`session.py`); the key itself is kept nowhere. Only a same-site form may sign in, so another
site cannot sign a browser in to an account of its choosing.
"""

from __future__ import annotations

import hmac
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from llm_gateway.api.ui.guard import Refused, runtime_of
from llm_gateway.api.ui.pages import render
from llm_gateway.api.ui.session import COOKIE, COOKIE_PATH, cookie_flags, same_site, sessions_of
from llm_gateway.core.context import Principal
from llm_gateway.core.errors import AuthenticationFailed
from llm_gateway.store.hashing import PREFIX

router = APIRouter(include_in_schema=False)


def _next(target: str | None) -> str:
    """Where to go after signing in: a UI path of this site only (no open redirect)."""
    if target and target.startswith("/ui/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/ui/"


@router.get("/")
async def root(request: Request) -> Response:
    runtime_of(request)  # a 404 when the UI is off
    return RedirectResponse("/ui/", status_code=307)


@router.get("/ui")
async def ui_root() -> Response:
    return RedirectResponse("/ui/", status_code=307)


@router.get("/ui/login")
async def sign_in_page(request: Request, next: str | None = None, reason: str | None = None) -> Response:
    runtime = runtime_of(request)
    if sessions_of(runtime) is None:
        return RedirectResponse("/ui/", status_code=303)
    return render(request, None, "login.html", next=_next(next), message=(reason or "")[:300])


@router.post("/ui/login")
async def sign_in(request: Request) -> Response:
    runtime = runtime_of(request)
    sessions = sessions_of(runtime)
    if sessions is None:
        return RedirectResponse("/ui/", status_code=303)
    if not same_site(request):
        raise Refused(403, "Refused", "This sign-in came from another site.")
    fields = dict(parse_qsl((await request.body()).decode("utf-8", "replace"), max_num_fields=10))
    key, target = fields.get("key", "").strip(), _next(fields.get("next"))
    assert runtime.master_key is not None
    if hmac.compare_digest(key.encode(), runtime.master_key.encode()):
        cookie = sessions.issue("master")
    elif key.startswith(PREFIX) and runtime.keys is not None:
        try:
            found = runtime.keys.lookup(key)
            principal = found if isinstance(found, Principal) else await found
        except AuthenticationFailed as failure:
            return render(request, None, "login.html", 401, next=target, message=failure.message)
        cookie = sessions.issue("key", principal.key_id, runtime.keys.fingerprint(key))
    else:
        return render(request, None, "login.html", 401, next=target, message="invalid API key")
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(value=cookie, **cookie_flags(request, sessions.seconds))  # type: ignore[arg-type]
    return response


@router.post("/ui/logout")
async def sign_out(request: Request) -> Response:
    if not same_site(request):
        raise Refused(403, "Refused", "This request came from another site.")
    response = RedirectResponse("/ui/login", status_code=303)
    response.delete_cookie(COOKIE, path=COOKIE_PATH)
    return response
