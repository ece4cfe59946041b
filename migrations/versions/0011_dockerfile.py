"""Dockerfiles: each built version keeps the Dockerfile its image was built from

Revision ID: 0011
Revises: 0010
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Versions built before have none: their images were put together from a recipe in code.
    op.add_column("model_versions", sa.Column("dockerfile", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("model_versions", "dockerfile")
