"""The request log: each request's attempts on its spend row, and the indexes its filters need.

The single-column indexes on key_id, team_id and model give way to (column, at, id): a page
filtered by one of them, newest first, is then a range scan of one index, and a time range
narrows it further. `request_id` is indexed for the lookup by id. `request_body` and
`response_body` hold the bodies captured for keys or teams with `log_bodies` (redacted, cut).

Revision ID: 0007_request_log
Revises: 0006_responses
Create Date: 2026-12-02

"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_request_log"
down_revision = "0006_responses"
branch_labels = None
depends_on = None

REPLACED = ("key_id", "team_id", "model")
FILTERS = ("key_id", "team_id", "model", "status")
BODIES = ("attempt_log", "request_body", "response_body")


def upgrade() -> None:
    with op.batch_alter_table("spend_logs") as batch:
        for name in BODIES:
            batch.add_column(sa.Column(name, sa.Text, nullable=True))
    for column in REPLACED:
        op.drop_index(f"ix_spend_logs_{column}", table_name="spend_logs")
    for column in FILTERS:
        op.create_index(f"ix_spend_logs_{column}_at", "spend_logs", [column, "at", "id"])
    op.create_index("ix_spend_logs_request_id", "spend_logs", ["request_id"])


def downgrade() -> None:
    op.drop_index("ix_spend_logs_request_id", table_name="spend_logs")
    for column in reversed(FILTERS):
        op.drop_index(f"ix_spend_logs_{column}_at", table_name="spend_logs")
    for column in REPLACED:
        op.create_index(f"ix_spend_logs_{column}", "spend_logs", [column])
    with op.batch_alter_table("spend_logs") as batch:
        for name in reversed(BODIES):
            batch.drop_column(name)
