"""Per-end-user budgets: `end_user_budget_usd` on a team (each end user of its keys and
JWTs gets that budget, per the team's `budget_period`).

Revision ID: 0003_end_user_budgets
Revises: 0002_spend
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_end_user_budgets"
down_revision = "0002_spend"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("teams") as batch:
        batch.add_column(sa.Column("end_user_budget_usd", sa.String(40), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("teams") as batch:
        batch.drop_column("end_user_budget_usd")
