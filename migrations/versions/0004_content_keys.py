"""versions record their image's content key, so that another model may reuse the image

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("model_versions", sa.Column("content_key", sa.String(length=64), nullable=True))
    op.create_index("ix_model_versions_content_key", "model_versions", ["content_key"])


def downgrade() -> None:
    op.drop_index("ix_model_versions_content_key", table_name="model_versions")
    op.drop_column("model_versions", "content_key")
