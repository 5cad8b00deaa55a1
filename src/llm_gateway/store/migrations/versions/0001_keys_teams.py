"""Keys and teams: virtual keys (only their secrets' hashes) and the teams they belong to.

Revision ID: 0001_keys_teams
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0001_keys_teams"
down_revision = None
branch_labels = None
depends_on = None


def _limits() -> list[sa.Column[Any]]:
    return [
        sa.Column("models", sa.JSON, nullable=True),
        sa.Column("rpm", sa.BigInteger, nullable=True),
        sa.Column("tpm", sa.BigInteger, nullable=True),
        sa.Column("max_parallel", sa.BigInteger, nullable=True),
        sa.Column("budget_usd", sa.String(40), nullable=True),
        sa.Column("budget_period", sa.String(16), nullable=False, server_default="none"),
        sa.Column("max_hold_usd", sa.String(40), nullable=True),
        sa.Column("metadata", sa.JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "teams",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        *_limits(),
    )
    op.create_table(
        "keys",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("team_id", sa.String(64), sa.ForeignKey("teams.id"), nullable=True),
        sa.Column("secret_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("key_hint", sa.String(32), nullable=False),
        sa.Column("previous_hash", sa.String(64), nullable=True, unique=True),
        sa.Column("previous_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("blocked", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("rotated_at", sa.DateTime(timezone=True), nullable=True),
        *_limits(),
    )
    op.create_index("ix_keys_team_id", "keys", ["team_id"])
    revisions = op.create_table(
        "revisions",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("value", sa.BigInteger, nullable=False),
    )
    op.bulk_insert(revisions, [{"name": "keys", "value": 0}])


def downgrade() -> None:
    op.drop_table("revisions")
    op.drop_index("ix_keys_team_id", table_name="keys")
    op.drop_table("keys")
    op.drop_table("teams")
