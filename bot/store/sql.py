"""``SqlStore``: the ``Store`` (``bot.store.base``) on SQLAlchemy Core, made of one part per
job on one ``Database``: SQLite (the embedded default) or PostgreSQL, with the same queries."""

from __future__ import annotations

from contextlib import AbstractContextManager

from sqlalchemy import Connection, Engine

from bot.store.base import StatusListener
from bot.store.db import Database, Part
from bot.store.drain import SqlDrain
from bot.store.intake import SqlIntake
from bot.store.logs import SqlLogs
from bot.store.migrate import create_if_empty
from bot.store.outbox import SqlOutbox
from bot.store.queue import SqlQueue
from bot.store.reads import SqlReads
from bot.store.records import SqlRecords
from bot.store.restarts import SqlRestarts


class SqlStore(
    SqlIntake, SqlQueue, SqlDrain, SqlRestarts, SqlRecords, SqlLogs, SqlOutbox, SqlReads
):
    """All persistence, on the database at ``url`` (``sqlite:///<file>`` or
    ``postgresql+psycopg://…``; created at the head revision when it has no tables, an
    existing one is left as it is, for ``migrate.check_schema``).

    ``listener`` is told the facts that change what GitHub sees (a build stored, builds
    superseded, attempts recovered) inside the transaction that makes them; the store
    itself decides nothing about statuses (``bot.reporter.Reporter`` does, handed in by the
    composition root)."""

    def __init__(self, url: str, listener: StatusListener) -> None:
        db = Database(url)
        Part.__init__(self, db, listener)
        db.created = create_if_empty(db)

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine (for migrations and tests)."""
        return self.db.engine

    def tx(self) -> AbstractContextManager[Connection]:
        """One write transaction (``Database.tx``)."""
        return self.db.tx()

    def read(self) -> AbstractContextManager[Connection]:
        """A connection for reads (``Database.read``)."""
        return self.db.read()

    @property
    def created(self) -> bool:
        """Whether this store created its database's schema when it was built."""
        return self.db.created

    def close(self) -> None:
        """Closes the pooled connections."""
        self.db.close()
