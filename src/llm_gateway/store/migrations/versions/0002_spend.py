"""The spend log: one row per governed request, and a daily rollup the usage reports read.

Revision ID: 0002_spend
Revises: 0001_keys_teams
Create Date: 2025-01-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_spend"
down_revision = "0001_keys_teams"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "spend_logs",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True
        ),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
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
        sa.Column("cost_usd", sa.String(40), nullable=True),
        sa.Column("estimated", sa.Boolean, nullable=False),
        sa.Column("latency_s", sa.Float, nullable=False),
        sa.Column("ttft_s", sa.Float, nullable=True),
        sa.Column("status", sa.Integer, nullable=False),
        sa.Column("error", sa.String(200), nullable=True),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("fallback", sa.String(200), nullable=True),
        sa.Column("operation", sa.String(32), nullable=False),
        sa.Column("stream", sa.Boolean, nullable=False),
    )
    for column in ("at", "key_id", "team_id", "model"):
        op.create_index(f"ix_spend_logs_{column}", "spend_logs", [column])
    op.create_table(
        "usage_daily",
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


def downgrade() -> None:
    op.drop_table("usage_daily")
    for column in ("at", "key_id", "team_id", "model"):
        op.drop_index(f"ix_spend_logs_{column}", table_name="spend_logs")
    op.drop_table("spend_logs")
