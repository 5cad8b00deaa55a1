"""Configuration of stored Responses API conversations (`responses:`, docs/responses.md):
where `store: true` keeps them for `GET /v1/responses/{id}` and `previous_response_id`,
and for how long."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from llm_gateway.core.strict import StrictModel


class ResponsesSettings(StrictModel):
    store: Literal["database", "memory"] = "database"
    """`database`: the gateway's `database_url`, shared by every instance and kept across
    restarts; `memory`: this process only (a bounded LRU), lost on restart."""
    ttl_days: Annotated[float, Field(gt=0, le=3650)] = 30.0
    """How long a stored response can be read or continued, from its write."""

    @property
    def ttl_seconds(self) -> float:
        return self.ttl_days * 86400.0
