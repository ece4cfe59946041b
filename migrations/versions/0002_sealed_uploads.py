"""sealed uploads: jobs.inputs {name: {key, size}} replaces jobs.input_keys (a list read at
[0]); model_versions.package_size records the sealed package's size

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

jobs = sa.table(
    "jobs",
    sa.column("id", sa.Uuid()),
    sa.column("input_keys", sa.JSON()),
    sa.column("inputs", sa.JSON()),
)


def upgrade() -> None:
    op.add_column("model_versions", sa.Column("package_size", sa.BigInteger(), nullable=True))
    op.add_column("jobs", sa.Column("inputs", sa.JSON(), nullable=True))
    connection = op.get_bind()
    for row in connection.execute(sa.select(jobs.c.id, jobs.c.input_keys)).all():
        inputs = {"input": {"key": row.input_keys[0], "size": None}} if row.input_keys else {}
        connection.execute(jobs.update().where(jobs.c.id == row.id).values(inputs=inputs))
    with op.batch_alter_table("jobs") as batch:
        batch.alter_column("inputs", existing_type=sa.JSON(), nullable=False)
        batch.drop_column("input_keys")


def downgrade() -> None:
    op.add_column("jobs", sa.Column("input_keys", sa.JSON(), nullable=True))
    connection = op.get_bind()
    for row in connection.execute(sa.select(jobs.c.id, jobs.c.inputs)).all():
        keys = [item["key"] for item in row.inputs.values()] if row.inputs else []
        connection.execute(jobs.update().where(jobs.c.id == row.id).values(input_keys=keys))
    with op.batch_alter_table("jobs") as batch:
        batch.alter_column("input_keys", existing_type=sa.JSON(), nullable=False)
        batch.drop_column("inputs")
    with op.batch_alter_table("model_versions") as batch:
        batch.drop_column("package_size")
