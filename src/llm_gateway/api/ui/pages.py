"""Rendering UI pages: one Jinja2 environment (autoescaping every template, undefined names
an error), the filters pages format numbers with, and the headers every page carries.

Every user-supplied string (model, key and team names, metadata, prompts, bodies) reaches
the HTML through autoescaping only; nothing is marked safe except the charts, which escape
their own labels (`charts.py`). The Content-Security-Policy allows scripts, styles and
connections to this origin only: no inline script, no CDN.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse

from llm_gateway import __version__
from llm_gateway.api.ui.session import CSRF_FIELD, Viewer

NONE = "\u2013"
"""What a missing figure shows (an en dash)."""

SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "cache-control": "no-store",
}


def money(value: Decimal | float | None, unpriced: str = "unpriced") -> str:
    """Dollars to the cent above $1, to six places below; None is 'unpriced', never $0."""
    if value is None:
        return unpriced
    amount = Decimal(str(value))
    return f"${amount:,.2f}" if abs(amount) >= 1 else f"${amount:.6f}"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return NONE
    if seconds < 1:
        return f"{seconds * 1000:.1f} ms" if seconds < 0.1 else f"{seconds * 1000:.0f} ms"
    return f"{seconds:.2f} s"


def count(value: int | float | None) -> str:
    return NONE if value is None else f"{value:,.0f}"


def moment(value: datetime | float | None) -> str:
    if value is None:
        return NONE
    if isinstance(value, (int, float)):
        value = datetime.fromtimestamp(value, UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("llm_gateway.api.ui", "templates"),
        autoescape=select_autoescape(["html"], default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(money=money, duration=duration, count=count, moment=moment)
    env.globals.update(version=__version__, csrf_field=CSRF_FIELD)
    return env


ENVIRONMENT = _environment()


def render(
    request: Request, viewer: Viewer | None, template: str, status: int = 200, **values: Any
) -> HTMLResponse:
    """`template` rendered for `viewer`, with the security headers."""
    page = ENVIRONMENT.get_template(template)
    runtime = getattr(request.app.state, "runtime", None)
    recording = runtime is not None and runtime.governance is not None
    html = page.render(request=request, viewer=viewer, path=request.url.path, recording=recording, **values)
    return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)
