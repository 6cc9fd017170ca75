"""Alembic's environment: runs the revisions on the connection ``bot.store.migrate`` opened
(one transaction, ``BEGIN IMMEDIATE`` on SQLite; on PostgreSQL DDL is transactional too, so
a migration is kept whole or not at all on both)."""

from __future__ import annotations

from alembic import context

from bot.store.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None or context.is_offline_mode():
    raise RuntimeError("run the store's migrations with `wercker-bot migrate`")

# Batch mode (copy and move a table) stands in for the ALTERs SQLite lacks; PostgreSQL
# alters tables in place.
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
