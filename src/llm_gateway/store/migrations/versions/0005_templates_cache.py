"""The spend log says which prompt template rendered a request and whether the cache answered.

Revision ID: 0005_templates_cache
Revises: 0004_spend_row_ids
Create Date: 2026-12-02

"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_templates_cache"
down_revision = "0004_spend_row_ids"
branch_labels = None
depends_on = None

COLUMNS = (
    ("cache", 16),
    ("cache_saved_usd", 40),
    ("template_id", 200),
    ("template_version", 64),
)


def upgrade() -> None:
    with op.batch_alter_table("spend_logs") as batch:
        for name, size in COLUMNS:
            batch.add_column(sa.Column(name, sa.String(size), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("spend_logs") as batch:
        for name, _size in reversed(COLUMNS):
            batch.drop_column(name)
