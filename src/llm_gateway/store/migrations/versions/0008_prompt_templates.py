"""Prompt templates managed through the admin API, and their revision counter.

Revision ID: 0008_prompt_templates
Revises: 0007_request_log
Create Date: 2026-12-03

"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_prompt_templates"
down_revision = "0007_request_log"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "prompt_templates",
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("version", sa.String(64), primary_key=True),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("spec", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    revisions = sa.table("revisions", sa.column("name", sa.String), sa.column("value", sa.BigInteger))
    op.bulk_insert(revisions, [{"name": "templates", "value": 0}])


def downgrade() -> None:
    op.execute("DELETE FROM revisions WHERE name = 'templates'")
    op.drop_table("prompt_templates")
