"""The tables keys and teams live in (SQLAlchemy Core), as the migrations create them.

Times are stored in UTC and read back timezone-aware on every backend (SQLite keeps no
zone); money is stored as decimal text, exact on every backend (SQLite has no decimal).
The secret of a key is never stored: `secret_hash` is its SHA-256 (`store/hashing.py`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect


class UtcDateTime(sa.TypeDecorator[datetime]):
    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class DecimalText(sa.TypeDecorator[Decimal]):
    impl = sa.String(40)
    cache_ok = True

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> str | None:
        return None if value is None else str(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        return None if value is None else Decimal(value)


metadata = sa.MetaData()


def _limits() -> list[sa.Column[Any]]:
    """The columns a key and a team share: allowed models and limits."""
    return [
        sa.Column("models", sa.JSON, nullable=True),
        sa.Column("rpm", sa.BigInteger, nullable=True),
        sa.Column("tpm", sa.BigInteger, nullable=True),
        sa.Column("max_parallel", sa.BigInteger, nullable=True),
        sa.Column("budget_usd", DecimalText, nullable=True),
        sa.Column("budget_period", sa.String(16), nullable=False, server_default="none"),
        sa.Column("max_hold_usd", DecimalText, nullable=True),
        sa.Column("metadata", sa.JSON, nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("updated_at", UtcDateTime, nullable=False),
    ]


teams = sa.Table(
    "teams",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False, unique=True),
    *_limits(),
    sa.Column("end_user_budget_usd", DecimalText, nullable=True),
)

keys = sa.Table(
    "keys",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("team_id", sa.String(64), sa.ForeignKey("teams.id"), nullable=True, index=True),
    sa.Column("secret_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("key_hint", sa.String(32), nullable=False),
    sa.Column("previous_hash", sa.String(64), nullable=True, unique=True),
    sa.Column("previous_until", UtcDateTime, nullable=True),
    sa.Column("expires_at", UtcDateTime, nullable=True),
    sa.Column("blocked", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("revoked_at", UtcDateTime, nullable=True),
    sa.Column("rotated_at", UtcDateTime, nullable=True),
    *_limits(),
)

revisions = sa.Table(
    "revisions",
    metadata,
    sa.Column("name", sa.String(32), primary_key=True),
    sa.Column("value", sa.BigInteger, nullable=False),
)
"""A counter per kind of data (`keys`: keys and teams), bumped in every write's transaction:
what instances compare to know they must reload (no clock is involved, so no skew)."""

REQUEST_FILTERS = ("key_id", "team_id", "model", "status")
"""The request log's equality filters: each has an index (column, at, id), so a filtered page
newest first is an index range scan however large the log (migration 0006)."""

spend_logs = sa.Table(
    "spend_logs",
    metadata,
    sa.Column(
        "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True
    ),
    sa.Column("row_id", sa.String(32), nullable=True),
    sa.Column("at", UtcDateTime, nullable=False, index=True),
    sa.Column("request_id", sa.String(200), nullable=False),
    sa.Column("key_id", sa.String(64), nullable=True),
    sa.Column("team_id", sa.String(64), nullable=True),
    sa.Column("end_user", sa.String(200), nullable=True),
    sa.Column("model", sa.String(200), nullable=True),
    sa.Column("deployment", sa.String(200), nullable=True),
    sa.Column("provider", sa.String(64), nullable=True),
    sa.Column("prompt_tokens", sa.BigInteger, nullable=False),
    sa.Column("completion_tokens", sa.BigInteger, nullable=False),
    sa.Column("cached_tokens", sa.BigInteger, nullable=False),
    sa.Column("reasoning_tokens", sa.BigInteger, nullable=False),
    sa.Column("cost_usd", DecimalText, nullable=True),
    sa.Column("estimated", sa.Boolean, nullable=False),
    sa.Column("latency_s", sa.Float, nullable=False),
    sa.Column("ttft_s", sa.Float, nullable=True),
    sa.Column("status", sa.Integer, nullable=False),
    sa.Column("error", sa.String(200), nullable=True),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("fallback", sa.String(200), nullable=True),
    sa.Column("operation", sa.String(32), nullable=False),
    sa.Column("stream", sa.Boolean, nullable=False),
    sa.Column("cache", sa.String(16), nullable=True),
    sa.Column("cache_saved_usd", DecimalText, nullable=True),
    sa.Column("template_id", sa.String(200), nullable=True),
    sa.Column("template_version", sa.String(64), nullable=True),
    sa.Column("attempt_log", sa.Text, nullable=True),
    sa.Column("request_body", sa.Text, nullable=True),
    sa.Column("response_body", sa.Text, nullable=True),
    sa.Index("uq_spend_logs_row_id", "row_id", unique=True),
    sa.Index("ix_spend_logs_request_id", "request_id"),
    *(sa.Index(f"ix_spend_logs_{column}_at", column, "at", "id") for column in REQUEST_FILTERS),
)
"""One row per governed request (`store/spend.SpendRow`); deleted after `retention_days`.
`row_id` is made with the row in memory and unique here, so a batch written again (its
commit went through but the acknowledgement was lost) adds nothing (NULL only in rows
written before migration 0004). `attempt_log` is the request's attempts as compact JSON
(`store/request_log.py`; NULL in rows written before migration 0006)."""

usage_daily = sa.Table(
    "usage_daily",
    metadata,
    sa.Column("day", sa.String(10), nullable=False),
    sa.Column("key_id", sa.String(64), nullable=False),
    sa.Column("team_id", sa.String(64), nullable=False),
    sa.Column("model", sa.String(200), nullable=False),
    sa.Column("end_user", sa.String(200), nullable=False),
    sa.Column("requests", sa.BigInteger, nullable=False),
    sa.Column("prompt_tokens", sa.BigInteger, nullable=False),
    sa.Column("completion_tokens", sa.BigInteger, nullable=False),
    sa.Column("cached_tokens", sa.BigInteger, nullable=False),
    sa.Column("reasoning_tokens", sa.BigInteger, nullable=False),
    sa.Column("cost_nanos", sa.BigInteger, nullable=False),
    sa.Column("unpriced_requests", sa.BigInteger, nullable=False),
    sa.Column("errors", sa.BigInteger, nullable=False),
    sa.UniqueConstraint("day", "key_id", "team_id", "model", "end_user", name="uq_usage_daily_group"),
)
"""Requests, tokens and cost per UTC day (`YYYY-MM-DD`), key, team, model and end user,
upserted with the rows they sum. A missing key, team, model or user is '' here (a NULL
would never conflict, so every batch would add a new row). Cost is in nano-dollars, an
exact integer every backend can sum; unpriced requests add nothing to it and are counted
in `unpriced_requests` instead."""

responses = sa.Table(
    "responses",
    metadata,
    sa.Column("id", sa.String(200), primary_key=True),
    sa.Column("owner", sa.String(200), primary_key=True),
    sa.Column("response", sa.Text, nullable=False),
    sa.Column("conversation", sa.Text, nullable=False),
    sa.Column("deployment", sa.String(200), nullable=True),
    sa.Column("upstream_stored", sa.Boolean, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("expires_at", UtcDateTime, nullable=False, index=True),
)
"""Stored Responses API answers (`store: true`, store/responses_db.py): the response as the
client got it and the whole conversation up to it, as JSON text, per owner (a key's id,
`master` or `open`; never a secret). Rows past `expires_at` are never read and are deleted
periodically."""

prompt_templates = sa.Table(
    "prompt_templates",
    metadata,
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("version", sa.String(64), primary_key=True),
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("spec", sa.Text, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
)
"""Prompt templates added through the admin API (store/templates.py), one row per version:
`spec` is the version as JSON (`PromptTemplate`), `seq` the `templates` revision it was
added at, so a name's versions keep the order they were added in (the last is the default)."""
