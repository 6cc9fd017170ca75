"""The store's database: the engine, one write transaction (``tx``), one read connection
(``read``), and how database errors become ``StoreUnavailable``.

SQLite in WAL mode. Every write transaction starts with ``BEGIN IMMEDIATE``, so a claim is
atomic across threads *and* processes (``serve`` and ``worker`` may share one ``data_dir``).
The queries above this module are SQLAlchemy Core, so they stay portable to PostgreSQL;
what is SQLite's own (pragmas, ``BEGIN IMMEDIATE``, error texts) is kept here.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, Table, create_engine, event
from sqlalchemy.exc import DBAPIError, OperationalError

from bot.errors import StoreUnavailable
from bot.store.base import StatusListener

logger = logging.getLogger(__name__)


def sqlite_reason(err: DBAPIError) -> str:
    """SQLite's own message, one line, without SQLAlchemy's SQL text and parameters (which
    may hold a whole batch of log text)."""
    text = str(err.orig).strip()
    return text.splitlines()[0] if text else type(err).__name__


def _rollback(conn: Connection) -> None:
    """Rolls back what is still open, and never hides the error that got us here.

    SQLite ends the transaction itself on some errors (SQLITE_FULL, SQLITE_IOERR); a
    ROLLBACK then fails with "cannot rollback - no transaction is active", and raising that
    would replace the real reason (a full disk showed up as a wall of "cannot rollback")."""
    try:
        dbapi = conn.connection.dbapi_connection
        if dbapi is not None and not getattr(dbapi, "in_transaction", True):
            return
        conn.exec_driver_sql("ROLLBACK")
    except Exception:
        # The connection is unusable; SQLAlchemy's pool resets or discards it on return.
        logger.debug("rollback failed after a failed transaction", exc_info=True)


def _on_connect(dbapi_conn: Any, _record: Any) -> None:
    # Autocommit at the driver: reads take no lock, and ``tx()`` issues BEGIN IMMEDIATE
    # itself (pysqlite's implicit BEGIN is DEFERRED, which would let two processes read
    # the same queued row before either writes).
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    # FULL: a build acknowledged with 202 survives a power cut (GitHub never retries).
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA busy_timeout=60000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


class Database:
    """One SQLite database file (created with its directory if missing). Safe to use from
    several threads and processes."""

    def __init__(self, db_path: Path) -> None:
        db_path.parent.mkdir(parents=True, exist_ok=True)
        self._write_lock = threading.Lock()
        self.engine: Engine = create_engine(
            f"sqlite:///{db_path}",
            connect_args={"check_same_thread": False, "timeout": 60},
        )
        event.listen(self.engine, "connect", _on_connect)
        self.created = False
        """Whether this process created the schema (``bot.store.migrate.create_if_empty``)."""

    @contextmanager
    def tx(self) -> Iterator[Connection]:
        """One write transaction (BEGIN IMMEDIATE … COMMIT): all of it is kept, or none.

        Raises ``StoreUnavailable`` (SQLite's own reason, e.g. "database or disk is full")
        when the database cannot be written — full disk, I/O error, locked past the busy
        timeout; nothing of the transaction is kept then. Other errors propagate as they are.
        """
        # Threads of one process queue on a lock instead of on SQLite's busy handler, whose
        # sleep-and-retry polling turns a burst of webhooks into multi-second tail latency.
        # Other processes still wait on the database lock (busy_timeout).
        with self._write_lock:
            try:
                with self.engine.connect() as conn:
                    conn.exec_driver_sql("BEGIN IMMEDIATE")
                    try:
                        yield conn
                        conn.exec_driver_sql("COMMIT")
                    except BaseException:
                        _rollback(conn)
                        raise
            except OperationalError as err:
                raise StoreUnavailable(sqlite_reason(err)) from err

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A connection for reads, outside any write transaction (reads take no lock).

        Raises ``StoreUnavailable`` (SQLite's own reason) when the database cannot be read
        — I/O error, a file that cannot be opened, locked past the busy timeout — so callers
        handle one error for reads and writes alike. Other errors propagate as they are."""
        try:
            with self.engine.connect() as conn:
                yield conn
        except OperationalError as err:
            raise StoreUnavailable(sqlite_reason(err)) from err

    def insert(self, table: Table, **values: Any) -> int:
        """Inserts one row in its own transaction and returns its primary key."""
        with self.tx() as conn:
            result = conn.execute(table.insert().values(**values))
            return int(result.inserted_primary_key[0])  # type: ignore[index]

    def close(self) -> None:
        """Closes the pooled connections (the database stays usable; it reconnects)."""
        self.engine.dispose()


class Part:
    """One job of the store (``SqlQueue``, ``SqlIntake``, …) on a shared ``Database``.

    ``listener`` is told the facts that change what the forge shows, inside the
    transaction that makes them."""

    def __init__(self, db: Database, listener: StatusListener) -> None:
        self.db = db
        self.listener = listener
