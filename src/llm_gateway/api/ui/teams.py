"""`/ui/teams`: teams, master key only: search and page, create, edit limits and models
(which bind every key of the team together), delete (refused while it has live keys)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import ValidationError
from starlette.responses import RedirectResponse, Response

from llm_gateway.api.admin.paging import known_id
from llm_gateway.api.admin.schemas import TeamCreate, TeamUpdate, storable
from llm_gateway.api.ui.forms import FormProblem, failure, grants_form, grants_input
from llm_gateway.api.ui.guard import Operator, Refused, form_of, runtime_of
from llm_gateway.api.ui.keys import PAGE
from llm_gateway.api.ui.pages import render
from llm_gateway.api.ui.session import Viewer
from llm_gateway.core.errors import GatewayError, NotFound
from llm_gateway.services.identities import Identities
from llm_gateway.store.records import TeamRecord

router = APIRouter(include_in_schema=False)

FIELDS = ("name", "models", "rpm", "tpm", "max_parallel", "budget_usd", "budget_period", "max_hold_usd",
          "end_user_budget_usd", "metadata")  # fmt: skip


def _identities(request: Request) -> Identities:
    identities = runtime_of(request).identities
    assert identities is not None, "the runtime always builds its identities"
    return identities


async def _team(identities: Identities, team_id: str) -> TeamRecord:
    try:
        team = await identities.teams.get(known_id(team_id, "team"))
    except NotFound:
        team = None
    if team is None:
        raise Refused(404, "Not found", "There is no team with that id.")
    return team


def _values(team: TeamRecord) -> dict[str, str]:
    budget = team.end_user_budget_usd
    return {
        "name": team.name,
        "end_user_budget_usd": "" if budget is None else str(budget),
        **grants_form(team.grants),
    }


@router.get("/ui/teams")
async def teams_page(request: Request, viewer: Operator, q: str = "", cursor: str | None = None) -> Response:
    identities = _identities(request)
    try:
        page = await identities.teams.page(PAGE, cursor or None, storable(q[:200]) or None)
    except (ValueError, GatewayError):
        raise Refused(400, "Bad search", "That search or page link is not valid.") from None
    return render(request, viewer, "teams.html", teams=page.items, q=q, next_cursor=page.next_cursor,
                  values={"budget_period": "none"}, errors=[])  # fmt: skip


@router.post("/ui/teams")
async def create_team(request: Request, viewer: Operator) -> Response:
    fields = await form_of(request, viewer)
    identities = _identities(request)
    try:
        values = {k: v for k, v in grants_input(fields, FIELDS).items() if v is not None}
        team_id = fields.get("id", "").strip() or None
        body = TeamCreate.model_validate({**values, **({"id": team_id} if team_id else {})})
        changes = body.changes()
        changes.pop("id", None)
        changes.pop("name", None)
        team = await identities.create_team(body.name, changes, body.id)
    except (ValidationError, FormProblem, GatewayError) as error:
        status, lines = failure(error)
        page = await identities.teams.page(PAGE)
        listing = {"teams": page.items, "q": "", "next_cursor": page.next_cursor}
        return render(request, viewer, "teams.html", status, values=fields, errors=lines, **listing)
    return RedirectResponse(f"/ui/teams/{team.id}", status_code=303)


async def _team_page(
    request: Request, viewer: Viewer, team: TeamRecord, status: int = 200, **extra: Any
) -> Response:
    identities = _identities(request)
    keys = await identities.keys.page(PAGE, team_id=team.id, include_revoked=False)
    values: dict[str, Any] = {"values": _values(team), "errors": [], **extra}
    return render(
        request, viewer, "team.html", status, team=team, keys=keys.items, more_keys=keys.next_cursor, **values
    )


@router.get("/ui/teams/{team_id}")
async def team_page(request: Request, viewer: Operator, team_id: str) -> Response:
    return await _team_page(request, viewer, await _team(_identities(request), team_id))


@router.post("/ui/teams/{team_id}")
async def update_team(request: Request, viewer: Operator, team_id: str) -> Response:
    fields = await form_of(request, viewer)
    identities = _identities(request)
    team = await _team(identities, team_id)
    try:
        body = TeamUpdate.model_validate(grants_input(fields, FIELDS))
        await identities.update_team(team.id, body.changes())
    except (ValidationError, FormProblem, GatewayError) as error:
        status, lines = failure(error)
        return await _team_page(request, viewer, team, status, values=fields, errors=lines)
    return RedirectResponse(f"/ui/teams/{team.id}?saved=1", status_code=303)


@router.post("/ui/teams/{team_id}/delete")
async def delete_team(request: Request, viewer: Operator, team_id: str) -> Response:
    await form_of(request, viewer)
    identities = _identities(request)
    team = await _team(identities, team_id)
    try:
        await identities.delete_team(team.id)
    except GatewayError as error:
        return await _team_page(request, viewer, team, error.status_code, errors=[error.message])
    return RedirectResponse("/ui/teams", status_code=303)
