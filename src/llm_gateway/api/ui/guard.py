"""What every UI route checks first: a signed-in viewer, the right to see the page, and for
a change, a same-site request carrying the session's CSRF token.

The checks raise `SessionEnded` (→ the sign-in page, the cookie cleared) or `Refused` (→ an
HTML page with the status); `install` registers both handlers on the app. Forms are
`application/x-www-form-urlencoded`, parsed here (bounded), so no multipart parser is needed.
"""

from __future__ import annotations

import hmac
from typing import Annotated
from urllib.parse import parse_qsl, quote

from fastapi import Depends, FastAPI, Request
from starlette.responses import RedirectResponse, Response

from llm_gateway.api.ui.pages import render
from llm_gateway.api.ui.session import (
    COOKIE,
    COOKIE_PATH,
    CSRF_FIELD,
    CSRF_HEADER,
    SessionEnded,
    Viewer,
    same_site,
    sessions_of,
    viewer_of,
)
from llm_gateway.core.config import is_loopback
from llm_gateway.core.errors import NotFound
from llm_gateway.runtime import Runtime

MAX_FIELDS = 100


class Refused(Exception):
    """A UI request that may not proceed: answered with an HTML page saying why."""

    def __init__(self, status: int, heading: str, message: str) -> None:
        super().__init__(message)
        self.status, self.heading, self.message = status, heading, message


def runtime_of(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    if not runtime.config.ui.enabled:
        raise NotFound("the UI is disabled (ui.enabled: false)")
    return runtime


async def _viewer(request: Request) -> Viewer:
    return viewer_for(request)


def viewer_for(request: Request) -> Viewer:
    """The viewer of `request`, or `Refused` / `SessionEnded` (shared with the playground)."""
    runtime = runtime_of(request)
    sessions = sessions_of(runtime)
    if sessions is None and not is_loopback(request.client.host if request.client else ""):
        raise Refused(
            403,
            "Set a master key",
            "No master key is configured, so the UI is served to this machine only (read-only). "
            "Set master_key in the config (or GATEWAY_MASTER_KEY) to sign in from elsewhere.",
        )
    return viewer_of(request, runtime, sessions)


SignedIn = Annotated[Viewer, Depends(_viewer)]
"""Any signed-in viewer (or, without a master key, the loopback read-only viewer)."""


async def _admin(viewer: SignedIn) -> Viewer:
    if not viewer.admin and not viewer.read_only:
        raise Refused(403, "Master key only", "This page is for the master key; your key sees its own usage.")
    return viewer


Operator = Annotated[Viewer, Depends(_admin)]
"""The master key (or the read-only viewer, who may look but not change)."""


async def form_of(request: Request, viewer: Viewer) -> dict[str, str]:
    """A change's form fields, once the request is shown to be the viewer's own: a session
    (not read-only), the same site, the right CSRF token."""
    if viewer.read_only:
        raise Refused(403, "Read-only", "Set a master key to make changes.")
    if not same_site(request):
        raise Refused(403, "Refused", "This request came from another site.")
    text = (await request.body()).decode("utf-8", errors="replace")
    try:
        fields = dict(parse_qsl(text, keep_blank_values=True, max_num_fields=MAX_FIELDS))
    except ValueError:
        raise Refused(400, "Bad form", "The form had too many fields.") from None
    token = fields.pop(CSRF_FIELD, None) or request.headers.get(CSRF_HEADER) or ""
    if not hmac.compare_digest(token.encode(), viewer.csrf.encode()):
        raise Refused(
            403, "Refused", "The form's security token is missing or stale: reload the page and retry."
        )
    return fields


def check_script_request(request: Request, viewer: Viewer) -> None:
    """A script's change (the playground): same site, the CSRF header."""
    token = request.headers.get(CSRF_HEADER) or ""
    if not same_site(request) or not hmac.compare_digest(token.encode(), viewer.csrf.encode()):
        raise Refused(403, "Refused", "missing or stale security token, or another site")


def _to_sign_in(request: Request, ended: SessionEnded) -> Response:
    target = f"/ui/login?next={quote(request.url.path)}"
    if ended.reason:
        target += f"&reason={quote(ended.reason)}"
    response: Response
    if request.headers.get("hx-request"):
        response = Response(status_code=401, headers={"hx-redirect": target})
    elif request.method == "GET":
        response = RedirectResponse(target, status_code=303)
    else:
        response = Response(status_code=401, content=ended.reason or "sign in first")
    if COOKIE in request.cookies:
        response.delete_cookie(COOKIE, path=COOKIE_PATH)
    return response


def install(app: FastAPI) -> None:
    async def session_ended(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, SessionEnded)
        return _to_sign_in(request, exc)

    async def refused(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Refused)
        return render(request, None, "message.html", exc.status, heading=exc.heading, message=exc.message)

    app.add_exception_handler(SessionEnded, session_ended)
    app.add_exception_handler(Refused, refused)
