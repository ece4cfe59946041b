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


# Names PostgreSQL's unnamed foreign keys have, given to SQLite's too so that batch mode finds
# the one to replace.
NAMES = {"fk": "%(table_name)s_%(column_0_name)s_fkey"}


def _version_key(ondelete: str, nullable: bool) -> None:
    with op.batch_alter_table("jobs", naming_convention=NAMES) as batch:
        batch.alter_column("version_id", existing_type=sa.Uuid(), nullable=nullable)
        batch.drop_constraint("jobs_version_id_fkey", type_="foreignkey")
        batch.create_foreign_key(
            "jobs_version_id_fkey", "model_versions", ["version_id"], ["id"], ondelete=ondelete
        )


def upgrade() -> None:
    _version_key("SET NULL", nullable=True)


def downgrade() -> None:
    op.execute("DELETE FROM jobs WHERE version_id IS NULL")
    _version_key("CASCADE", nullable=False)
