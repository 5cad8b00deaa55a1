"""What the store hands out: immutable records of teams and keys, and list pages.

A record never carries a secret; a key's `secret_hash` and `previous_hash` are hashes
(`store/hashing.py`) and stay inside the gateway (the admin API does not render them).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Generic, TypeVar

from llm_gateway.core.context import BudgetPeriod, Limits
from llm_gateway.core.errors import InvalidRequest
from llm_gateway.core.types import JSON

LIMIT_FIELDS = ("rpm", "tpm", "max_parallel", "budget_usd", "budget_period", "max_hold_usd")
GRANT_FIELDS = ("models", *LIMIT_FIELDS, "metadata")
"""What a key and a team both hold: allowed models, limits and free-form metadata."""


@dataclass(frozen=True, slots=True)
class Grants:
    models: tuple[str, ...] | None = None
    rpm: int | None = None
    tpm: int | None = None
    max_parallel: int | None = None
    budget_usd: Decimal | None = None
    budget_period: BudgetPeriod = "none"
    max_hold_usd: Decimal | None = None
    metadata: JSON = field(default_factory=dict)

    @property
    def limits(self) -> Limits:
        return Limits(
            rpm=self.rpm,
            tpm=self.tpm,
            max_parallel=self.max_parallel,
            budget_usd=self.budget_usd,
            budget_period=self.budget_period,
            max_hold_usd=self.max_hold_usd,
        )


TEAM_FIELDS = ("end_user_budget_usd",)
"""What only a team holds."""


@dataclass(frozen=True, slots=True)
class TeamRecord:
    id: str
    name: str
    grants: Grants
    created_at: datetime
    updated_at: datetime
    end_user_budget_usd: Decimal | None = None
    """Each end user of the team's keys and JWTs gets this budget, per the team's
    `budget_period` (None: end users are not budgeted apart)."""

    @property
    def end_user_limits(self) -> Limits | None:
        if self.end_user_budget_usd is None:
            return None
        return Limits(budget_usd=self.end_user_budget_usd, budget_period=self.grants.budget_period)


@dataclass(frozen=True, slots=True)
class KeyRecord:
    id: str
    name: str
    team_id: str | None
    key_hint: str
    secret_hash: str
    previous_hash: str | None
    previous_until: datetime | None
    """The old secret of a rotated key works until then (the grace period)."""
    expires_at: datetime | None
    blocked: bool
    revoked_at: datetime | None
    rotated_at: datetime | None
    grants: Grants
    created_at: datetime
    updated_at: datetime


T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: Sequence[T]
    next_cursor: str | None


def grants_of(row: Mapping[Any, Any]) -> Grants:
    models = row["models"]
    return Grants(
        models=tuple(models) if models is not None else None,
        rpm=row["rpm"],
        tpm=row["tpm"],
        max_parallel=row["max_parallel"],
        budget_usd=row["budget_usd"],
        budget_period=row["budget_period"],
        max_hold_usd=row["max_hold_usd"],
        metadata=row["metadata"] or {},
    )


def team_of(row: Mapping[Any, Any]) -> TeamRecord:
    return TeamRecord(
        row["id"],
        row["name"],
        grants_of(row),
        row["created_at"],
        row["updated_at"],
        row.get("end_user_budget_usd"),
    )


def key_of(row: Mapping[Any, Any]) -> KeyRecord:
    return KeyRecord(
        id=row["id"],
        name=row["name"],
        team_id=row["team_id"],
        key_hint=row["key_hint"],
        secret_hash=row["secret_hash"],
        previous_hash=row["previous_hash"],
        previous_until=row["previous_until"],
        expires_at=row["expires_at"],
        blocked=row["blocked"],
        revoked_at=row["revoked_at"],
        rotated_at=row["rotated_at"],
        grants=grants_of(row),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def grant_values(values: Mapping[str, Any]) -> dict[str, Any]:
    """Column values for the grant fields present in `values` (models stored as a list)."""
    out = {name: values[name] for name in GRANT_FIELDS if name in values}
    if out.get("models") is not None:
        out["models"] = list(out["models"])
    if "metadata" in out and out["metadata"] is None:
        out["metadata"] = {}
    return out


def encode_cursor(last_id: str) -> str:
    return base64.urlsafe_b64encode(last_id.encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> str | None:
    """The id a page continues after; a cursor this store did not make is a 400."""
    if cursor is None:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value = base64.urlsafe_b64decode(padded.encode("ascii")).decode()
    except (ValueError, binascii.Error, UnicodeError):
        raise InvalidRequest("cursor: not a cursor from a previous page", param="cursor") from None
    if not value or len(value) > 64 or encode_cursor(value) != cursor:
        raise InvalidRequest("cursor: not a cursor from a previous page", param="cursor")
    return value
