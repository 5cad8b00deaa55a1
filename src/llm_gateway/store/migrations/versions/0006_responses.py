"""Stored Responses API conversations (`previous_response_id` on any instance).

Revision ID: 0006_responses
Revises: 0005_templates_cache
Create Date: 2026-12-02

"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_responses"
down_revision = "0005_templates_cache"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "responses",
        sa.Column("id", sa.String(200), primary_key=True),
        sa.Column("owner", sa.String(200), primary_key=True),
        sa.Column("response", sa.Text, nullable=False),
        sa.Column("conversation", sa.Text, nullable=False),
        sa.Column("deployment", sa.String(200), nullable=True),
        sa.Column("upstream_stored", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_responses_expires_at", "responses", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_responses_expires_at", table_name="responses")
    op.drop_table("responses")
