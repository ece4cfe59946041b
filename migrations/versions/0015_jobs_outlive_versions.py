"""Another user's jobs outlive a version its owner removes: detached, not deleted

Revision ID: 0015
Revises: 0014
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.alter_column("jobs", "version_id", existing_type=sa.Uuid(), nullable=True)
    op.drop_constraint("jobs_version_id_fkey", "jobs", type_="foreignkey")
    op.create_foreign_key(
        "jobs_version_id_fkey", "jobs", "model_versions", ["version_id"], ["id"],
        ondelete="SET NULL",
    )  # fmt: skip


def downgrade() -> None:
    op.execute("DELETE FROM jobs WHERE version_id IS NULL")
    op.drop_constraint("jobs_version_id_fkey", "jobs", type_="foreignkey")
    op.create_foreign_key(
        "jobs_version_id_fkey", "jobs", "model_versions", ["version_id"], ["id"],
        ondelete="CASCADE",
    )  # fmt: skip
    op.alter_column("jobs", "version_id", existing_type=sa.Uuid(), nullable=False)
