"""Retention: a job whose files expired keeps its row, marked data_removed

Revision ID: 0009
Revises: 0008
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "jobs",
        sa.Column("data_removed", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    # The retention sweep looks for ended jobs by their end, and waiting uploads by their start.
    op.create_index("ix_jobs_finished_at", "jobs", ["finished_at"])
    op.create_index("ix_jobs_status_created_at", "jobs", ["status", "created_at"])
    op.create_index(
        "ix_model_versions_status_created_at", "model_versions", ["status", "created_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_model_versions_status_created_at", "model_versions")
    op.drop_index("ix_jobs_status_created_at", "jobs")
    op.drop_index("ix_jobs_finished_at", "jobs")
    op.drop_column("jobs", "data_removed")
