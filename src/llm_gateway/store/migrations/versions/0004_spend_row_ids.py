"""Spend rows written exactly once: each row carries the unique id it was made with, so a
batch retried after a commit whose acknowledgement was lost inserts nothing twice.

Rows written before this revision have no id (NULL, which a unique index never compares
equal), and keep none.

Revision ID: 0004_spend_row_ids
Revises: 0003_end_user_budgets
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_spend_row_ids"
down_revision = "0003_end_user_budgets"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("spend_logs", sa.Column("row_id", sa.String(32), nullable=True))
    op.create_index("uq_spend_logs_row_id", "spend_logs", ["row_id"], unique=True)


def downgrade() -> None:
    op.drop_index("uq_spend_logs_row_id", table_name="spend_logs")
    with op.batch_alter_table("spend_logs") as batch:
        batch.drop_column("row_id")
