"""Alembic's environment: runs the revisions on the connection ``bot.store.migrate`` opened
(one ``BEGIN IMMEDIATE`` transaction, so a migration is kept whole or not at all)."""

from __future__ import annotations

from alembic import context

from bot.store.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None or context.is_offline_mode():
    raise RuntimeError("run the store's migrations with `wercker-bot migrate`")

context.configure(connection=connection, target_metadata=metadata)
with context.begin_transaction():
    context.run_migrations()
