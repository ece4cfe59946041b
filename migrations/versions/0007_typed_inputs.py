"""Typed inputs: a version's input schema; a job's inputs keyed by input name

Revision ID: 0007
Revises: 0006
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

jobs = sa.table("jobs", sa.column("id", sa.Uuid()), sa.column("inputs", sa.JSON()),
                sa.column("batch", sa.JSON()))  # fmt: skip


def upgrade() -> None:
    op.add_column("model_versions", sa.Column("input_schema", sa.JSON(), nullable=True))
    # A single job's one file was stored under the file name the model sees; now it is the
    # input named "input" (the old contract's), with its file name beside its key and size.
    _rewrite(lambda inputs: {
        "input": {"name": name, "key": file["key"], "offset": 0, "size": file["size"]}
        for name, file in inputs.items()
    })  # fmt: skip


def downgrade() -> None:
    _rewrite(lambda inputs: {
        file["name"]: {"key": file["key"], "size": file["size"]} for file in inputs.values()
    })  # fmt: skip
    op.drop_column("model_versions", "input_schema")


def _rewrite(change) -> None:
    connection = op.get_bind()
    rows = connection.execute(sa.select(jobs.c.id, jobs.c.inputs).where(jobs.c.batch.is_(None)))
    for job_id, inputs in rows.all():
        if inputs:
            connection.execute(
                jobs.update().where(jobs.c.id == job_id).values(inputs=change(inputs))
            )
