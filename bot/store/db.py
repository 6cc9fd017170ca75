"""The store's database: the engine, one write transaction (``tx``), one read connection
(``read``), the locks a transaction may take (``try_lock``, ``exclusive``), and how database
errors become ``StoreUnavailable``. Everything one dialect does differently lives here; the
queries above this module are SQLAlchemy Core and the same on both.

- **SQLite** (the embedded default) in WAL mode. Every write transaction starts with
  ``BEGIN IMMEDIATE``, so a write transaction excludes every other writer, across threads
  *and* processes (``serve`` and ``worker`` may share one ``data_dir``).
- **PostgreSQL** (``postgresql+psycopg://``, workers on several hosts): a pooled engine with
  ``pool_pre_ping`` (a connection the server dropped is replaced, not handed out), and
  transactions at READ COMMITTED that run side by side. What must not interleave takes a
  transaction-scoped advisory lock (``try_lock``, ``exclusive``); row locks come from
  ``SELECT … FOR UPDATE`` (which SQLAlchemy renders as nothing on SQLite, where
  ``BEGIN IMMEDIATE`` already holds the whole database). No client holds them for ever: a
  session idle inside a transaction (a paused host), a stuck statement and a vanished
  host's connection (TCP keepalives) are ended by the server (``_pg_options``). Heartbeats
  are the server's clock (``db_now``), the one clock all hosts share.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Connection,
    Engine,
    Float,
    Table,
    cast,
    create_engine,
    event,
    func,
    literal,
    select,
)
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError

from bot.errors import StoreUnavailable
from bot.store.base import StatusListener

logger = logging.getLogger(__name__)

# What PostgreSQL waits for a lock (a row another transaction is changing, the schema lock)
# before the statement fails: SQLite's busy_timeout, the same minute.
PG_LOCK_TIMEOUT_MS = 60_000
PG_CONNECT_TIMEOUT_S = 10
# A transaction left open by a paused or cut-off client (SIGSTOP, a VM frozen, a network
# partition) must not hold its row and advisory locks for ever: the server ends a session
# idle inside a transaction after this, well under the dispatcher's lost_after (30 s by
# default), so the reaper and the other claimers are never blocked past it.
PG_IDLE_IN_TX_TIMEOUT_MS = 20_000
# No store statement legitimately runs this long (every one touches a few rows by index);
# one that does is stuck, and failing it (``StoreUnavailable``) frees its locks.
PG_STATEMENT_TIMEOUT_MS = 60_000
# TCP keepalives, idle + interval × count = 25 s: the server's (set for the session) end the
# session, and free its locks, of a host that vanished (power cut, partition) without
# closing its socket; libpq's let this client notice a server that vanished the same way.
PG_KEEPALIVE_IDLE_S, PG_KEEPALIVE_INTERVAL_S, PG_KEEPALIVE_COUNT = 10, 5, 3
PG_KEEPALIVES = {
    "keepalives": 1,
    "keepalives_idle": PG_KEEPALIVE_IDLE_S,
    "keepalives_interval": PG_KEEPALIVE_INTERVAL_S,
    "keepalives_count": PG_KEEPALIVE_COUNT,
}
# Errors that mean "the PostgreSQL server cannot be used right now": the server is down or
# restarting, the connection was lost, the pool has no connection to give.
_PG_UNAVAILABLE = (OperationalError, sa_exc.InterfaceError, sa_exc.TimeoutError)
# SQLSTATE of a session the server ended for idling inside its transaction (a paused
# client, ``PG_IDLE_IN_TX_TIMEOUT_MS``): its connection is gone, like any lost connection.
_PG_IDLE_ENDED = "25P03"


def _pg_gone(err: DBAPIError) -> bool:
    return getattr(err.orig, "sqlstate", None) == _PG_IDLE_ENDED


def sqlite_reason(err: DBAPIError) -> str:
    """SQLite's own message, one line, without SQLAlchemy's SQL text and parameters (which
    may hold a whole batch of log text)."""
    text = str(err.orig).strip()
    return text.splitlines()[0] if text else type(err).__name__


def pg_reason(err: Exception, where: str, password: str | None) -> str:
    """The server's (or driver's) own message, one line, naming the database by ``where``
    (its URL without the password): never the SQL text, its parameters or the password."""
    orig = err.orig if isinstance(err, DBAPIError) else err
    lines = str(orig).strip().splitlines()
    line = lines[0].strip() if lines else type(orig).__name__
    if password:
        line = line.replace(password, "***")
    return f"PostgreSQL at {where}: {line}"


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


def _on_sqlite_connect(dbapi_conn: Any, _record: Any) -> None:
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


def _lock_key(name: str) -> Any:
    """The 64-bit advisory lock key of ``name`` (PostgreSQL's own string hash). Two names
    sharing a key only make their holders exclude each other now and then: never unsafe."""
    return func.hashtextextended(name, 0).cast(BigInteger)


def try_lock(conn: Connection, name: str) -> bool:
    """Takes the lock ``name`` until the end of ``conn``'s transaction if no other
    transaction holds it; False, without waiting, if one does. Locks are shared by every
    process on every host using the database. On SQLite it is always True: ``BEGIN
    IMMEDIATE`` already excludes every other writer."""
    if conn.dialect.name != "postgresql":
        return True
    return bool(conn.execute(select(func.pg_try_advisory_xact_lock(_lock_key(name)))).scalar())


INTAKE_LOCK = "wercker-bot intake"
"""Held by every transaction that adds queued attempts (intake, a restart's re-queue): on
PostgreSQL, where transactions run side by side, two deliveries of one push (GitHub
retries, a user's redelivery) would otherwise both pass the dedupe, and a push stored while
a restart re-queues could be ordered before it. SQLite's writes already exclude each other."""


def exclusive(conn: Connection, name: str) -> None:
    """Waits for the lock ``name`` and holds it until the end of ``conn``'s transaction
    (at most ``PG_LOCK_TIMEOUT_MS``, then ``StoreUnavailable``). A no-op on SQLite, whose
    write transactions already exclude each other."""
    if conn.dialect.name == "postgresql":
        conn.execute(select(func.pg_advisory_xact_lock(_lock_key(name))))


def _pg_options() -> str:
    """The session settings of every store connection to PostgreSQL (libpq ``options``)."""
    return (
        f"-c lock_timeout={PG_LOCK_TIMEOUT_MS}"
        f" -c idle_in_transaction_session_timeout={PG_IDLE_IN_TX_TIMEOUT_MS}"
        f" -c statement_timeout={PG_STATEMENT_TIMEOUT_MS}"
        f" -c tcp_keepalives_idle={PG_KEEPALIVE_IDLE_S}"
        f" -c tcp_keepalives_interval={PG_KEEPALIVE_INTERVAL_S}"
        f" -c tcp_keepalives_count={PG_KEEPALIVE_COUNT}"
    )


def db_now(conn: Connection) -> ColumnElement[float]:
    """ "Now" in seconds since the epoch, as a SQL expression for ``conn``'s transaction:
    every heartbeat written and every staleness cutoff computed from it.

    On PostgreSQL it is the database server's clock (``clock_timestamp()``), the one clock
    every host shares: a host whose own clock runs fast must not reap the live builds of
    the others, nor one running slow have its own reaped. On SQLite (one host, one clock)
    it is this host's ``time.time()``."""
    if conn.dialect.name == "postgresql":
        return cast(func.extract("epoch", func.clock_timestamp()), Float)
    return literal(time.time(), Float)


class Database:
    """The database at ``url`` (``sqlite:///<file>``, the file created with its directory if
    missing, or ``postgresql+psycopg://…``). Safe to use from several threads and processes;
    on PostgreSQL from several hosts too.

    ``where`` names it in messages: the SQLite file, or the PostgreSQL URL without its
    password."""

    def __init__(self, url: str) -> None:
        parsed = make_url(url)
        self.dialect = parsed.get_backend_name()
        self._password = parsed.password
        self._write_lock: threading.Lock | None = None
        if self.dialect == "sqlite":
            db_path = Path(parsed.database or "")
            db_path.parent.mkdir(parents=True, exist_ok=True)
            self.where = str(db_path)
            self._write_lock = threading.Lock()
            self.engine: Engine = create_engine(
                parsed, connect_args={"check_same_thread": False, "timeout": 60}
            )
            event.listen(self.engine, "connect", _on_sqlite_connect)
        elif self.dialect == "postgresql":
            self.where = parsed.render_as_string(hide_password=True)
            self.engine = create_engine(
                parsed,
                pool_pre_ping=True,
                connect_args={
                    "connect_timeout": PG_CONNECT_TIMEOUT_S,
                    "options": _pg_options(),
                    "application_name": "wercker-bot",
                    **PG_KEEPALIVES,
                },
            )
        else:
            raise ValueError(f"unsupported database {self.dialect!r} (sqlite or postgresql)")
        self.created = False
        """Whether this process created the schema (``bot.store.migrate.create_if_empty``)."""

    @property
    def is_postgres(self) -> bool:
        return self.dialect == "postgresql"

    def _unavailable(self, err: Exception) -> StoreUnavailable:
        if self.is_postgres:
            return StoreUnavailable(pg_reason(err, self.where, self._password))
        assert isinstance(err, DBAPIError)
        return StoreUnavailable(sqlite_reason(err))

    @contextmanager
    def tx(self) -> Iterator[Connection]:
        """One write transaction: all of it is kept, or none.

        Raises ``StoreUnavailable`` (the database's own one-line reason, e.g. "database or
        disk is full", or PostgreSQL's "connection refused") when the database cannot be
        written — full disk, I/O error, locked past the timeout, server down or connection
        lost; nothing of the transaction is kept then. Other errors propagate as they are."""
        if self._write_lock is None:
            with self._pg_tx() as conn:
                yield conn
            return
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
                raise self._unavailable(err) from err

    @contextmanager
    def _pg_tx(self) -> Iterator[Connection]:
        # READ COMMITTED (the server's default): transactions run side by side; what must
        # not interleave locks rows (FOR UPDATE) or takes an advisory lock (``try_lock``).
        try:
            with self.engine.connect() as conn, conn.begin():
                yield conn
        except _PG_UNAVAILABLE as err:
            raise self._unavailable(err) from err
        except DBAPIError as err:
            if not _pg_gone(err):
                raise
            raise self._unavailable(err) from err

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A connection for reads, outside any write transaction (reads take no lock).

        Raises ``StoreUnavailable`` (the database's own reason) when the database cannot be
        read — I/O error, a file that cannot be opened, locked past the timeout, server down
        — so callers handle one error for reads and writes alike. Other errors propagate as
        they are."""
        caught = _PG_UNAVAILABLE if self.is_postgres else (OperationalError,)
        try:
            with self.engine.connect() as conn:
                yield conn
        except caught as err:
            raise self._unavailable(err) from err

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
