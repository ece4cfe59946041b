"""Webhooks: where a job's or version's go, each user's signing secret, the attempts

Revision ID: 0008
Revises: 0007
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TARGETS = ("jobs", "model_versions")


def upgrade() -> None:
    op.add_column("users", sa.Column("webhook_secret", sa.String(64), nullable=True))
    for table in TARGETS:
        op.add_column(table, sa.Column("webhook", sa.String(2048), nullable=True))
        op.add_column(table, sa.Column("webhook_events", sa.JSON(), nullable=True))
    op.create_table(
        "webhook_attempts",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
        sa.Column("message_id", sa.String(128), nullable=False, index=True),
        sa.Column("job_id", sa.Uuid(), sa.ForeignKey("jobs.id", ondelete="CASCADE"), index=True),
        sa.Column("version_id", sa.Uuid(),
                  sa.ForeignKey("model_versions.id", ondelete="CASCADE"), index=True),
        sa.Column("event", sa.String(16), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
    )  # fmt: skip


def downgrade() -> None:
    op.drop_table("webhook_attempts")
    for table in TARGETS:
        op.drop_column(table, "webhook_events")
        op.drop_column(table, "webhook")
    op.drop_column("users", "webhook_secret")
