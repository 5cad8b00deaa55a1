"""`/ui/keys`: virtual keys: search and page through them, create one (its secret shown once),
edit its limits and models, rotate, block, unblock, revoke; spend and remaining budget.

Every change goes through `Identities`, as the admin API's do (the index reloads here and
every instance hears of it), and is validated by the admin API's own models. A virtual
key signed in sees its own key only, read-only.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Request
from pydantic import ValidationError
from starlette.responses import RedirectResponse, Response

from llm_gateway.api.admin.paging import known_id
from llm_gateway.api.admin.schemas import KeyCreate, KeyRotate, KeyUpdate, storable
from llm_gateway.api.ui.forms import FormProblem, failure, grants_form, grants_input
from llm_gateway.api.ui.guard import Refused, SignedIn, form_of, runtime_of
from llm_gateway.api.ui.pages import render
from llm_gateway.api.ui.session import Viewer
from llm_gateway.core.errors import GatewayError, NotFound
from llm_gateway.runtime import Runtime
from llm_gateway.services.identities import Identities
from llm_gateway.services.keyindex import principal_of
from llm_gateway.store.records import KeyRecord
from llm_gateway.store.spend_db import SpendStore

router = APIRouter(include_in_schema=False)

PAGE = 50
FIELDS = ("name", "team_id", "models", "rpm", "tpm", "max_parallel", "budget_usd", "budget_period",
          "max_hold_usd", "expires_at", "metadata")  # fmt: skip


def _identities(runtime: Runtime) -> Identities:
    assert runtime.identities is not None, "the runtime always builds its identities"
    return runtime.identities


def _must_be_admin(viewer: Viewer) -> None:
    if not viewer.admin:
        raise Refused(403, "Master key only", "Only the master key manages keys.")


async def _key(identities: Identities, key_id: str) -> KeyRecord:
    try:
        key = await identities.keys.get(known_id(key_id, "key"))
    except NotFound:
        key = None
    if key is None:
        raise Refused(404, "Not found", "There is no key with that id.")
    return key


def status_of(key: KeyRecord) -> str:
    if key.revoked_at is not None:
        return "revoked"
    if key.blocked:
        return "blocked"
    if key.expires_at is not None and key.expires_at <= datetime.now(UTC):
        return "expired"
    return "active"


async def month_spend(identities: Identities, key_ids: list[str]) -> dict[str, Decimal | None]:
    """Each key's spend this calendar month (UTC), from the daily rollup: one query."""
    first = datetime.now(UTC).date().replace(day=1)
    if not key_ids:
        return {}
    if len(key_ids) == 1:
        found = await SpendStore(identities.database).usage("key", first, key_id=key_ids[0])
    else:
        found = await SpendStore(identities.database).usage("key", first)
    wanted = set(key_ids)
    return {str(row.group): row.cost_usd for row in found if row.group in wanted}


async def budget_left(runtime: Runtime, key: KeyRecord) -> tuple[Decimal | None, Decimal | None]:
    """(spent this budget period, remaining) for a key with a budget; (None, None) without."""
    if key.grants.budget_usd is None or runtime.spend is None:
        return None, None
    spent = await runtime.spend.spent_usd(principal_of(key, None).scopes[0])
    if spent is None:
        return None, None
    return spent, max(key.grants.budget_usd - spent, Decimal(0))


@router.get("/ui/keys")
async def keys_page(request: Request, viewer: SignedIn, q: str = "", cursor: str | None = None) -> Response:
    if viewer.kind == "key":
        return RedirectResponse(f"/ui/keys/{viewer.key_id}", status_code=303)
    identities = _identities(runtime_of(request))
    try:
        page = await identities.keys.page(PAGE, cursor or None, storable(q[:200]) or None)
    except (ValueError, GatewayError):
        raise Refused(400, "Bad search", "That search or page link is not valid.") from None
    spend = await month_spend(identities, [key.id for key in page.items])
    rows = [{"key": key, "status": status_of(key), "spent": spend.get(key.id)} for key in page.items]
    teams = {team.id: team.name for team in await identities.teams.all()}
    return render(request, viewer, "keys.html", rows=rows, q=q, next_cursor=page.next_cursor, teams=teams)


async def _team_choices(identities: Identities) -> list[tuple[str, str]]:
    return [(team.id, team.name) for team in await identities.teams.all()]


@router.get("/ui/keys/new")
async def new_key_page(request: Request, viewer: SignedIn) -> Response:
    _must_be_admin(viewer)
    identities = _identities(runtime_of(request))
    values = {"budget_period": "none"}
    return render(
        request, viewer, "key_new.html", values=values, errors=[], teams=await _team_choices(identities)
    )


@router.post("/ui/keys")
async def create_key(request: Request, viewer: SignedIn) -> Response:
    fields = await form_of(request, viewer)
    _must_be_admin(viewer)
    identities = _identities(runtime_of(request))
    try:
        values = {k: v for k, v in grants_input(fields, FIELDS).items() if v is not None}
        key, secret = await identities.create_key(KeyCreate.model_validate(values).changes())
    except (ValidationError, FormProblem, GatewayError) as error:
        status, lines = failure(error)
        teams = await _team_choices(identities)
        return render(request, viewer, "key_new.html", status, values=fields, errors=lines, teams=teams)
    return render(request, viewer, "key_secret.html", key=key, secret=secret, rotated=False)


def _form_values(key: KeyRecord) -> dict[str, str]:
    expires = key.expires_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M") if key.expires_at else ""
    return {"name": key.name, "team_id": key.team_id or "", "expires_at": expires, **grants_form(key.grants)}


async def _key_page(
    request: Request, viewer: Viewer, key: KeyRecord, status: int = 200, **extra: Any
) -> Response:
    runtime = runtime_of(request)
    identities = _identities(runtime)
    spent, remaining = await budget_left(runtime, key)
    month = (await month_spend(identities, [key.id])).get(key.id)
    values: dict[str, Any] = {"values": _form_values(key), "errors": [], **extra}
    return render(
        request, viewer, "key.html", status, key=key, state=status_of(key), spent=spent, remaining=remaining,
        month=month, teams=await _team_choices(identities), **values,
    )  # fmt: skip


@router.get("/ui/keys/{key_id}")
async def key_page(request: Request, viewer: SignedIn, key_id: str) -> Response:
    if viewer.kind == "key" and key_id != viewer.key_id:
        raise Refused(404, "Not found", "There is no key with that id.")
    key = await _key(_identities(runtime_of(request)), key_id)
    return await _key_page(request, viewer, key)


@router.post("/ui/keys/{key_id}")
async def update_key(request: Request, viewer: SignedIn, key_id: str) -> Response:
    fields = await form_of(request, viewer)
    _must_be_admin(viewer)
    identities = _identities(runtime_of(request))
    key = await _key(identities, key_id)
    try:
        body = KeyUpdate.model_validate(grants_input(fields, (*FIELDS, "blocked")))
        await identities.update_key(key.id, body.changes())
    except (ValidationError, FormProblem, GatewayError) as error:
        status, lines = failure(error)
        return await _key_page(request, viewer, key, status, values=fields, errors=lines)
    return RedirectResponse(f"/ui/keys/{key.id}?saved=1", status_code=303)


@router.post("/ui/keys/{key_id}/{action}")
async def key_action(request: Request, viewer: SignedIn, key_id: str, action: str) -> Response:
    """`rotate` (with `grace_seconds`), `block`, `unblock`, `revoke`."""
    fields = await form_of(request, viewer)
    _must_be_admin(viewer)
    identities = _identities(runtime_of(request))
    key = await _key(identities, key_id)
    if action == "rotate":
        try:
            grace = KeyRotate.model_validate({"grace_seconds": int(fields.get("grace_seconds") or 0)})
        except (ValueError, ValidationError):
            return await _key_page(request, viewer, key, 400, errors=["grace_seconds: 0 to 2592000 seconds"])
        rotated = await identities.rotate_key(key.id, grace.grace_seconds)
        if rotated is None:
            raise Refused(404, "Not found", "There is no key with that id.")
        return render(request, viewer, "key_secret.html", key=rotated[0], secret=rotated[1], rotated=True)
    if action in ("block", "unblock"):
        await identities.update_key(key.id, {"blocked": action == "block"})
    elif action == "revoke":
        await identities.revoke_key(key.id)
    else:
        raise Refused(404, "Not found", "No such action.")
    return RedirectResponse(f"/ui/keys/{key.id}", status_code=303)
