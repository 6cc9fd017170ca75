"""The schema of the last release before migrations (commit 8c3a7c6).

The tables and indexes its ``metadata.create_all`` made. FROZEN: this is what databases in the
field hold; never edit it to follow ``bot/store/schema.py`` (a change there is a new revision).

Databases created before commit f15975e lack three of these indexes (``create_all`` never adds
an index to a table that exists); revision 0002 adds them where they are missing.

Revision ID: 0001_first_release
Revises:
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import (
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

revision = "0001_first_release"
down_revision: str | None = None
branch_labels = None
depends_on = None

metadata = MetaData()

builds = Table(
    "builds",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("repo", String(200), nullable=False),  # owner/name as configured
    Column("ref", String(400), nullable=False),
    Column("branch", String(300), nullable=False, default=""),
    Column("git_tag", String(300), nullable=False, default=""),
    Column("sha", String(64), nullable=False),
    Column("before_sha", String(64), nullable=False, default=""),
    Column("message", Text, nullable=False, default=""),
    Column("pusher", String(200), nullable=False, default=""),
    Column("html_url", String(400), nullable=False, default=""),
    Column("pipelines", Text, nullable=False, default="[]"),  # JSON list of names planned
    Column("created_at", Float, nullable=False),
)
Index("ix_builds_repo_branch", builds.c.repo, builds.c.branch)

deliveries = Table(
    "deliveries",
    metadata,
    Column("hook_id", String(100), primary_key=True),
    Column("delivery_id", String(100), primary_key=True),
    Column("build_id", Integer, ForeignKey("builds.id"), nullable=False),
    Column("received_at", Float, nullable=False),
)

attempts = Table(
    "attempts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("build_id", Integer, ForeignKey("builds.id"), nullable=False),
    Column("number", Integer, nullable=False),
    Column("state", String(20), nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("explicit", Boolean, nullable=False, default=False),  # a user's redelivery
    Column("runner", String(20), nullable=False, default=""),
    Column("worker", String(200), nullable=False, default=""),  # host:pid:thread
    Column("heartbeat_at", Float),
    Column("created_at", Float, nullable=False),
    Column("started_at", Float),
    Column("finished_at", Float),
    UniqueConstraint("build_id", "number"),
)
Index("ix_attempts_state", attempts.c.state)

pipelines = Table(
    "pipelines",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("attempt_id", Integer, ForeignKey("attempts.id"), nullable=False),
    Column("position", Integer, nullable=False),
    Column("name", String(200), nullable=False),
    Column("state", String(20), nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("started_at", Float),
    Column("finished_at", Float),
)

steps = Table(
    "steps",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("pipeline_id", Integer, ForeignKey("pipelines.id"), nullable=False),
    Column("position", Integer, nullable=False),
    Column("phase", String(10), nullable=False),  # main | after
    Column("step_id", String(200), nullable=False),
    Column("name", String(400), nullable=False),
    Column("state", String(20), nullable=False),
    Column("exit_code", Integer),
    Column("message", Text, nullable=False, default=""),
    Column("started_at", Float),
    Column("finished_at", Float),
)

images = Table(
    "images",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("attempt_id", Integer, ForeignKey("attempts.id"), nullable=False),
    Column("pipeline", String(200), nullable=False),
    Column("registry", String(300), nullable=False),
    Column("repository", String(400), nullable=False),
    Column("tags", Text, nullable=False),  # comma-joined
    Column("digest", String(100), nullable=False),
    Column("created_at", Float, nullable=False),
)

logs = Table(
    "logs",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("attempt_id", Integer, ForeignKey("attempts.id"), nullable=False),
    Column("text", Text, nullable=False),
    Column("created_at", Float, nullable=False),
)
Index("ix_logs_attempt", logs.c.attempt_id, logs.c.id)

outbox = Table(
    "status_outbox",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("repo", String(200), nullable=False),
    Column("sha", String(64), nullable=False),
    Column("context", String(300), nullable=False),
    Column("state", String(20), nullable=False),
    Column("description", String(400), nullable=False),
    Column("target_url", String(600), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("tries", Integer, nullable=False, default=0),
    Column("next_try_at", Float, nullable=False),
    Column("locked_until", Float, nullable=False, default=0.0),
    Column("delivered_at", Float),
    Column("outcome", String(20), nullable=False, default="queued"),
    # queued | delivered | superseded | failed
    Column("last_error", Text, nullable=False, default=""),
)
Index("ix_outbox_pending", outbox.c.outcome, outbox.c.next_try_at)
# Added by f15975e: absent from databases created before it (revision 0002 adds them).
Index("ix_outbox_commit", outbox.c.repo, outbox.c.sha, outbox.c.context)
Index("ix_attempts_build", attempts.c.build_id, attempts.c.number)
Index("ix_builds_before", builds.c.repo, builds.c.branch, builds.c.before_sha)


def upgrade() -> None:
    metadata.create_all(op.get_bind())


def downgrade() -> None:
    metadata.drop_all(op.get_bind())
