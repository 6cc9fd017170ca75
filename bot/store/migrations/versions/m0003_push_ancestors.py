"""The push_ancestors table and its index.

The commits a push proves to be ancestors of its own: how intake orders out-of-order
deliveries without a clone. Created unless a database made by unreleased code before
migrations already has it.

Revision ID: 0003_push_ancestors
Revises: 0002_release_indexes
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_push_ancestors"
down_revision = "0002_release_indexes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "push_ancestors",
        sa.Column("build_id", sa.Integer, sa.ForeignKey("builds.id"), nullable=False),
        sa.Column("sha", sa.String(64), nullable=False),
        sa.UniqueConstraint("build_id", "sha"),
        if_not_exists=True,
    )
    op.create_index("ix_push_ancestors_sha", "push_ancestors", ["sha"], if_not_exists=True)


def downgrade() -> None:
    op.drop_index("ix_push_ancestors_sha", "push_ancestors")
    op.drop_table("push_ancestors")
