"""`/admin/teams`: create, list, show, change, delete (refused while the team has live keys)."""

from __future__ import annotations

from fastapi import APIRouter

from llm_gateway.api.admin.paging import Cursor, IdentitiesDep, Limit, Search, known_id
from llm_gateway.api.admin.schemas import Deleted, TeamCreate, TeamList, TeamOut, TeamUpdate
from llm_gateway.core.errors import NotFound
from llm_gateway.store.records import TeamRecord

router = APIRouter(prefix="/teams", tags=["admin: teams"])


def _found(team: TeamRecord | None) -> TeamRecord:
    if team is None:
        raise NotFound("no team with that id")
    return team


@router.post("", status_code=201, response_model=TeamOut)
async def create_team(body: TeamCreate, identities: IdentitiesDep) -> TeamOut:
    values = body.changes()
    values.pop("id", None)
    values.pop("name", None)
    return TeamOut.of(await identities.create_team(body.name, values, body.id))


@router.get("", response_model=TeamList)
async def list_teams(
    identities: IdentitiesDep, limit: Limit = 50, cursor: Cursor = None, name: Search = None
) -> TeamList:
    page = await identities.teams.page(limit, cursor, name)
    return TeamList(data=[TeamOut.of(team) for team in page.items], next_cursor=page.next_cursor)


@router.get("/{team_id}", response_model=TeamOut)
async def show_team(team_id: str, identities: IdentitiesDep) -> TeamOut:
    return TeamOut.of(_found(await identities.teams.get(known_id(team_id, "team"))))


@router.patch("/{team_id}", response_model=TeamOut)
async def update_team(team_id: str, body: TeamUpdate, identities: IdentitiesDep) -> TeamOut:
    """Change the fields sent; the team's keys see the change as soon as the index reloads."""
    return TeamOut.of(_found(await identities.update_team(known_id(team_id, "team"), body.changes())))


@router.delete("/{team_id}", response_model=Deleted)
async def delete_team(team_id: str, identities: IdentitiesDep) -> Deleted:
    """Delete the team: 409 while any of its keys is not revoked (revoke or move them first)."""
    if not await identities.delete_team(known_id(team_id, "team")):
        raise NotFound("no team with that id")
    return Deleted(id=team_id, object="team")
