"""`/admin/keys`: create (the one response carrying the secret), list, show, change, revoke, rotate."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from llm_gateway.api.admin.paging import Cursor, IdentitiesDep, Limit, Search, known_id
from llm_gateway.api.admin.schemas import (
    ID_PATTERN,
    KeyCreate,
    KeyCreated,
    KeyList,
    KeyOut,
    KeyRotate,
    KeyUpdate,
)
from llm_gateway.core.errors import NotFound
from llm_gateway.store.records import KeyRecord

router = APIRouter(prefix="/keys", tags=["admin: keys"])


def _found(key: KeyRecord | None) -> KeyRecord:
    if key is None:
        raise NotFound("no key with that id")
    return key


@router.post("", status_code=201, response_model=KeyCreated)
async def create_key(body: KeyCreate, identities: IdentitiesDep) -> KeyCreated:
    """A new virtual key. `key` (the secret) is in this response only: store it now."""
    key, secret = await identities.create_key(body.changes())
    return KeyCreated(key=secret, **KeyOut.of(key).model_dump())


@router.get("", response_model=KeyList)
async def list_keys(
    identities: IdentitiesDep,
    limit: Limit = 50,
    cursor: Cursor = None,
    name: Search = None,
    team_id: Annotated[str | None, Query(pattern=ID_PATTERN)] = None,
    include_revoked: bool = True,
) -> KeyList:
    """Keys in id order, a page at a time; `name` matches part of the name, `team_id` exactly."""
    page = await identities.keys.page(limit, cursor, name, team_id, include_revoked)
    return KeyList(data=[KeyOut.of(key) for key in page.items], next_cursor=page.next_cursor)


@router.get("/{key_id}", response_model=KeyOut)
async def show_key(key_id: str, identities: IdentitiesDep) -> KeyOut:
    return KeyOut.of(_found(await identities.keys.get(known_id(key_id, "key"))))


@router.patch("/{key_id}", response_model=KeyOut)
async def update_key(key_id: str, body: KeyUpdate, identities: IdentitiesDep) -> KeyOut:
    """Change the fields sent (null clears a limit, `models: null` allows every model)."""
    return KeyOut.of(_found(await identities.update_key(known_id(key_id, "key"), body.changes())))


@router.delete("/{key_id}", response_model=KeyOut)
async def revoke_key(key_id: str, identities: IdentitiesDep) -> KeyOut:
    """Revoke the key for good (it stays listed, with `revoked_at`)."""
    return KeyOut.of(_found(await identities.revoke_key(known_id(key_id, "key"))))


@router.post("/{key_id}/rotate", response_model=KeyCreated)
async def rotate_key(key_id: str, identities: IdentitiesDep, body: KeyRotate | None = None) -> KeyCreated:
    """A new secret for the same key; the old one works `grace_seconds` longer (default 0)."""
    rotated = await identities.rotate_key(known_id(key_id, "key"), (body or KeyRotate()).grace_seconds)
    if rotated is None:
        raise NotFound("no key with that id")
    key, secret = rotated
    return KeyCreated(key=secret, **KeyOut.of(key).model_dump())
