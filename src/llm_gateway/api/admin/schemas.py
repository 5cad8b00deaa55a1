"""What the admin API accepts and returns: strict pydantic models, unknown fields refused.

Every text is bounded and must be storable on every backend (no NUL, no lone surrogate:
PostgreSQL refuses both), numbers are bounded and finite, metadata is small, and a naive
time is taken as UTC. A value out of bounds is a 400 naming the field, never a 500.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

import orjson
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from llm_gateway.store.records import Grants, KeyRecord, TeamRecord

MAX_METADATA_BYTES = 16 * 1024
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


def storable(text: str) -> str:
    if "\x00" in text:
        raise ValueError("must not contain NUL characters")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode (no lone surrogates)") from None
    return text


def _small_json(value: dict[str, Any]) -> dict[str, Any]:
    try:
        encoded = orjson.dumps(value)
    except (TypeError, orjson.JSONEncodeError):
        raise ValueError(
            "must be JSON without NUL characters or lone surrogates, nested at most 254 deep"
        ) from None
    if len(encoded) > MAX_METADATA_BYTES or b"\\u0000" in encoded:
        raise ValueError(f"must be at most {MAX_METADATA_BYTES} bytes of JSON, without NUL characters")
    guardrails = value.get("guardrails")
    if guardrails is not None and not (
        isinstance(guardrails, list) and all(isinstance(name, str) and name for name in guardrails)
    ):
        raise ValueError("guardrails: must be a list of guardrail names (docs/policies.md)")
    return value


def _utc(moment: datetime) -> datetime:
    try:
        utc = moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    except OverflowError:
        raise ValueError("must be a time between the years 1 and 9999 in UTC") from None
    if not 1970 <= utc.year <= 9999:
        raise ValueError("must be a time between the years 1970 and 9999")
    return utc


Text = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(storable)]
Pattern = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(storable)]
Models = Annotated[list[Pattern], Field(max_length=200)]
Count = Annotated[int, Field(strict=True, ge=1, le=10**12)]
Money = Annotated[Decimal, Field(ge=0, le=10**9, max_digits=18, decimal_places=6)]
Period = Literal["none", "daily", "weekly", "monthly"]
Metadata = Annotated[dict[str, Any], AfterValidator(_small_json)]
Moment = Annotated[datetime, AfterValidator(_utc)]
TeamId = Annotated[str, Field(pattern=ID_PATTERN)]


class AdminModel(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, hide_input_in_errors=True)


class GrantsIn(AdminModel):
    """What a key and a team both set; None (or left out) is no limit / every model."""

    models: Models | None = None
    rpm: Count | None = None
    tpm: Count | None = None
    max_parallel: Count | None = None
    budget_usd: Money | None = None
    budget_period: Period = "none"
    max_hold_usd: Money | None = None
    metadata: Metadata = Field(default_factory=dict)

    @model_validator(mode="after")
    def _not_null(self) -> Any:
        """In a PATCH, a field sent as null clears it; these cannot be cleared."""
        for name in ("name", "budget_period", "metadata", "blocked"):
            if name in self.model_fields_set and getattr(self, name, ...) is None:
                raise ValueError(f"{name}: may not be null")
        return self

    def changes(self) -> dict[str, Any]:
        """The fields the client sent, with their values: what a create or PATCH sets."""
        return {name: getattr(self, name) for name in self.model_fields_set}


class KeyCreate(GrantsIn):
    name: Text
    team_id: TeamId | None = None
    expires_at: Moment | None = None
    blocked: bool = False


class KeyUpdate(GrantsIn):
    name: Text | None = None
    team_id: TeamId | None = None
    expires_at: Moment | None = None
    blocked: bool | None = None
    budget_period: Period | None = None  # type: ignore[assignment]
    metadata: Metadata | None = None  # type: ignore[assignment]


class KeyRotate(AdminModel):
    grace_seconds: Annotated[int, Field(strict=True, ge=0, le=30 * 86400)] = 0
    """How long the old secret keeps working (0: it stops at once)."""


class TeamCreate(GrantsIn):
    id: TeamId | None = None
    """Chosen by the operator (`t1`, `search-team`), or made up (`team_…`) when left out."""
    name: Text
    end_user_budget_usd: Money | None = None
    """Each end user (`user`, `metadata.user_id`, the JWT's user claim) gets this budget of
    its own, per the team's `budget_period`."""


class TeamUpdate(GrantsIn):
    name: Text | None = None
    end_user_budget_usd: Money | None = None
    budget_period: Period | None = None  # type: ignore[assignment]
    metadata: Metadata | None = None  # type: ignore[assignment]


class GrantsOut(BaseModel):
    models: list[str] | None
    rpm: int | None
    tpm: int | None
    max_parallel: int | None
    budget_usd: float | None
    budget_period: Period
    max_hold_usd: float | None
    metadata: dict[str, Any]


def _grants(grants: Grants) -> dict[str, Any]:
    return {
        "models": list(grants.models) if grants.models is not None else None,
        "rpm": grants.rpm,
        "tpm": grants.tpm,
        "max_parallel": grants.max_parallel,
        "budget_usd": float(grants.budget_usd) if grants.budget_usd is not None else None,
        "budget_period": grants.budget_period,
        "max_hold_usd": float(grants.max_hold_usd) if grants.max_hold_usd is not None else None,
        "metadata": grants.metadata,
    }


class KeyOut(GrantsOut):
    """A key as the admin API shows it: never its secret, only `key_hint`."""

    object: Literal["key"] = "key"
    id: str
    name: str
    team_id: str | None
    key_hint: str
    expires_at: datetime | None
    blocked: bool
    revoked_at: datetime | None
    rotated_at: datetime | None
    grace_until: datetime | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, key: KeyRecord) -> KeyOut:
        return cls(
            id=key.id,
            name=key.name,
            team_id=key.team_id,
            key_hint=key.key_hint,
            expires_at=key.expires_at,
            blocked=key.blocked,
            revoked_at=key.revoked_at,
            rotated_at=key.rotated_at,
            grace_until=key.previous_until,
            created_at=key.created_at,
            updated_at=key.updated_at,
            **_grants(key.grants),
        )


class KeyCreated(KeyOut):
    key: str
    """The secret: shown in this response only, stored nowhere."""


class TeamOut(GrantsOut):
    object: Literal["team"] = "team"
    id: str
    name: str
    end_user_budget_usd: float | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, team: TeamRecord) -> TeamOut:
        return cls(
            id=team.id,
            name=team.name,
            end_user_budget_usd=(
                float(team.end_user_budget_usd) if team.end_user_budget_usd is not None else None
            ),
            created_at=team.created_at,
            updated_at=team.updated_at,
            **_grants(team.grants),
        )


class KeyList(BaseModel):
    object: Literal["list"] = "list"
    data: list[KeyOut]
    next_cursor: str | None
    """Pass as `cursor` for the next page; null on the last."""


class TeamList(BaseModel):
    object: Literal["list"] = "list"
    data: list[TeamOut]
    next_cursor: str | None


class Deleted(BaseModel):
    id: str
    object: str
    deleted: bool = True
