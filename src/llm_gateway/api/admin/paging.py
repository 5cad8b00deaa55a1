"""What the admin routes share: the identities service, page and search parameters, ids."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import Depends, Query, Request
from pydantic import AfterValidator

from llm_gateway.api.admin.schemas import ID_PATTERN, storable
from llm_gateway.core.errors import NotFound
from llm_gateway.services.identities import Identities

MAX_PAGE = 200


async def _identities(request: Request) -> Identities:
    identities: Identities | None = request.app.state.runtime.identities
    assert identities is not None, "the runtime always builds its identities"
    return identities


IdentitiesDep = Annotated[Identities, Depends(_identities)]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE, description=f"page size, at most {MAX_PAGE}")]
Cursor = Annotated[
    str | None,
    Query(max_length=200, description="`next_cursor` of the previous page"),
    AfterValidator(lambda value: storable(value) if value is not None else None),
]
Search = Annotated[
    str | None,
    Query(max_length=200, description="part of the name, any case"),
    AfterValidator(lambda value: storable(value) if value is not None else None),
]
_ID = re.compile(ID_PATTERN)


def known_id(value: str, kind: str) -> str:
    """An id that could exist; anything else is simply not found (nothing odd reaches SQL)."""
    if not _ID.fullmatch(value):
        raise NotFound(f"no {kind} with that id")
    return value
