"""The three indexes added after the first release, created where they are missing.

Commit f15975e added them to the schema, but ``create_all`` never adds an index to a table
that exists, so databases created before it lack them.

They are part of revision 0001's schema (the last release created them), so downgrading
leaves them in place.

Revision ID: 0002_release_indexes
Revises: 0001_first_release
"""

from __future__ import annotations

from alembic import op

revision = "0002_release_indexes"
down_revision = "0001_first_release"
branch_labels = None
depends_on = None

INDEXES = {
    "ix_outbox_commit": ("status_outbox", ["repo", "sha", "context"]),
    "ix_attempts_build": ("attempts", ["build_id", "number"]),
    "ix_builds_before": ("builds", ["repo", "branch", "before_sha"]),
}


def upgrade() -> None:
    for name, (table, columns) in INDEXES.items():
        op.create_index(name, table, columns, if_not_exists=True)


def downgrade() -> None:
    pass
