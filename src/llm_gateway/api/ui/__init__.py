"""The admin web UI, served by the gateway itself under `/ui/` (docs/ui.md).

Server-rendered pages (Jinja2, `templates/`) with htmx and one small script of our own for
the few live parts, all shipped in the package (`static/`), nothing from a CDN:

    /ui/login, /ui/logout, / → /ui/          sign in with a key, the session cookie   signin.py
    /ui/                                      overview: traffic, latency, spend          overview.py
    /ui/keys, /ui/keys/{id}, /ui/teams, …     keys and teams: create, edit, rotate, …   keys.py, teams.py
    /ui/usage, /ui/usage.csv                  spend and tokens by key, team, model, …   usage.py
    /ui/requests, /ui/requests/{id}           the request log and one request           requests.py
    /ui/deployments                           live health per deployment                deployments.py
    /ui/playground, POST /ui/playground/chat  a chat through the normal API path        playground.py
    /ui/config                                the effective config, secrets masked       settings.py

Who may see what: `session.py` (the cookie), `guard.py` (the checks every route makes).
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.staticfiles import StaticFiles

from llm_gateway.api.ui import (
    deployments,
    guard,
    keys,
    overview,
    playground,
    requests,
    settings,
    signin,
    teams,
    usage,
)

PAGES = (signin, overview, keys, teams, usage, requests, deployments, playground, settings)


def mount(app: FastAPI) -> None:
    """Add the UI's routes, its static files and its error pages to `app`."""
    for module in PAGES:
        app.include_router(module.router)
    app.mount("/ui/static", StaticFiles(packages=[("llm_gateway.api.ui", "static")]), name="ui-static")
    guard.install(app)
