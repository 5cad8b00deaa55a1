"""The operator's API under `/admin`, master key only, JSON in and out (in the OpenAPI schema).

    GET  /admin/deployments                  each deployment's health      deployments.py
    POST/GET /admin/keys, GET/PATCH/DELETE /admin/keys/{id}, POST …/rotate   keys.py
    POST/GET /admin/teams, GET/PATCH/DELETE /admin/teams/{id}                teams.py
    GET  /admin/usage?group_by=…, GET /admin/spend/logs                      usage.py
    GET  /admin/requests?…, GET /admin/requests/{request_id}                 requests.py
    POST /admin/config/reload, GET /admin/config                             config.py
    POST/GET /admin/templates, GET/DELETE /admin/templates/{name}[/versions/{version}]   templates.py

Bad input is a 400 naming the field (`api/errors.py` renders validation errors), an
unknown id a 404, a conflict (duplicate team name, a team with live keys) a 409.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from llm_gateway.api.admin import config, deployments, keys, requests, teams, templates, usage
from llm_gateway.api.auth import require_master_key


async def _master_key_only(request: Request) -> None:
    require_master_key(request.headers, request.app.state.runtime.master_key)


router = APIRouter(prefix="/admin", dependencies=[Depends(_master_key_only)])
for _module in (deployments, keys, teams, usage, requests, config, templates):
    router.include_router(_module.router)
