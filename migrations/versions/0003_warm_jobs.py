"""synchronous, batch and canceled jobs: job_status gains CANCELED; jobs gain an idempotency
key (unique per owner), a batch of items with its counters; job_items holds each item's outcome;
job_inline_inputs the bytes of inputs sent inline

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_STATUSES = ("UPLOADING", "QUEUED", "RUNNING", "SUCCEEDED", "FAILED")


def _postgresql() -> bool:
    # Elsewhere (SQLite) an enum is a plain string column: a new value needs no change.
    return op.get_bind().dialect.name == "postgresql"


def upgrade() -> None:
    if _postgresql():
        op.execute("ALTER TYPE job_status ADD VALUE IF NOT EXISTS 'CANCELED'")
    op.add_column("jobs", sa.Column("batch", sa.JSON(), nullable=True))
    op.add_column("jobs", sa.Column("items_total", sa.Integer(), nullable=True))
    for counter in ("items_done", "items_failed"):
        # The server default fills the rows already there (and stays: SQLite cannot drop it).
        op.add_column(
            "jobs", sa.Column(counter, sa.Integer(), nullable=False, server_default="0")
        )
    op.add_column("jobs", sa.Column("idempotency_key", sa.String(length=255), nullable=True))
    op.create_index(
        "uq_jobs_owner_idempotency_key", "jobs", ["owner_id", "idempotency_key"], unique=True
    )
    op.create_table(
        "job_items",
        sa.Column("job_id", sa.Uuid(), nullable=False),
        sa.Column("index", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column(
            "status",
            sa.Enum(*OLD_STATUSES, "CANCELED", name="job_status", create_type=False),
            nullable=False,
        ),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("outputs", sa.JSON(), nullable=False),
        sa.Column("run_seconds", sa.Double(), nullable=True),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("job_id", "index"),
    )
    op.create_table(
        "job_inline_inputs",
        sa.Column("job_id", sa.Uuid(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("job_id"),
    )


def downgrade() -> None:
    op.drop_table("job_inline_inputs")
    op.drop_table("job_items")
    op.drop_index("uq_jobs_owner_idempotency_key", table_name="jobs")
    for column in ("idempotency_key", "items_failed", "items_done", "items_total", "batch"):
        op.drop_column("jobs", column)
    op.execute("UPDATE jobs SET status = 'FAILED' WHERE status = 'CANCELED'")
    if not _postgresql():
        return
    # PostgreSQL cannot drop an enum value: the type is made again without it.
    op.execute("ALTER TYPE job_status RENAME TO job_status_old")
    sa.Enum(*OLD_STATUSES, name="job_status").create(op.get_bind())
    op.execute(
        "ALTER TABLE jobs ALTER COLUMN status TYPE job_status USING status::text::job_status"
    )
    op.execute("DROP TYPE job_status_old")
