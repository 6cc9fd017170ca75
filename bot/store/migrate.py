"""Schema revisions of the store (Alembic, ``bot/store/migrations``).

- A new database is created at head and stamped there (``create_if_empty``, by ``SqlStore``):
  a new install needs no migrate step.
- A database with no ``alembic_version`` table was made by a release before migrations: its
  tables must be the first release's, and it counts as that revision.
- ``upgrade`` (``wercker-bot migrate``) brings a database to head in one transaction.
- ``check_schema`` is how ``serve``, ``worker`` and the web app refuse a database that is
  not at head.
"""

from __future__ import annotations

import logging
import shlex
from contextlib import AbstractContextManager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from sqlalchemy import Connection, Engine, inspect

from bot.errors import WerckerBotError
from bot.store.db import exclusive
from bot.store.migrations import SCRIPT_LOCATION
from bot.store.schema import metadata

if TYPE_CHECKING:
    from alembic.script import ScriptDirectory

FIRST_RELEASE = "0001_first_release"
VERSION_TABLE = "alembic_version"
# Held by whoever creates or migrates the schema: on SQLite BEGIN IMMEDIATE already
# excludes the others; on PostgreSQL two processes starting on one new database would
# otherwise both create the tables (``bot.store.db.exclusive``).
SCHEMA_LOCK = "wercker-bot schema"

# Alembic logs at INFO as it loads and on every connection ("Context impl SQLiteImpl."); we
# report ourselves. Set before alembic is first imported (below, in the functions using it).
logging.getLogger("alembic").setLevel(logging.WARNING)


class Migratable(Protocol):
    """A database to check or migrate: ``bot.store.db.Database``, or a ``SqlStore``."""

    @property
    def engine(self) -> Engine: ...

    @property
    def created(self) -> bool:
        """Whether this process created the schema when it opened the database."""
        ...

    def tx(self) -> AbstractContextManager[Connection]:
        """One write transaction, all kept or none."""
        ...

    def read(self) -> AbstractContextManager[Connection]:
        """A connection for reads (``StoreUnavailable`` when the database cannot be read)."""
        ...


class SchemaError(WerckerBotError):
    """The database is not at the revision this bot needs, or is not a wercker-bot store."""


@lru_cache(maxsize=1)
def _script() -> ScriptDirectory:
    from alembic.script import ScriptDirectory

    return ScriptDirectory(str(SCRIPT_LOCATION))


def head_revision() -> str:
    head = _script().get_current_head()
    assert head is not None
    return head


def known_revisions() -> list[str]:
    """Every revision this bot has, oldest first."""
    return [s.revision for s in reversed(list(_script().walk_revisions()))]


@dataclass(frozen=True)
class Revision:
    """Where a database stands: ``current`` is None for an empty database; ``stamped`` is
    False for one made before migrations (taken as the first release)."""

    current: str | None
    stamped: bool


def _release_mismatch(conn: Connection, names: set[str]) -> str:
    """Why the tables are not those of the first release ("" when they are)."""
    from bot.store.migrations.versions.m0001_first_release import metadata as release

    problems: list[str] = []
    for table in release.sorted_tables:
        if table.name not in names:
            problems.append(f"no table {table.name}")
            continue
        have = {c["name"] for c in inspect(conn).get_columns(table.name)}
        missing = sorted({c.name for c in table.columns} - have)
        if missing:
            problems.append(f"{table.name} lacks {', '.join(missing)}")
    return "; ".join(problems)


def read_revision(conn: Connection, where: str) -> Revision:
    """The revision of the database on ``conn`` (``where`` names it in errors)."""
    names = set(inspect(conn).get_table_names())
    if not names:
        return Revision(None, False)
    if VERSION_TABLE in names:
        from alembic.runtime.migration import MigrationContext

        heads = MigrationContext.configure(conn).get_current_heads()
        if len(heads) != 1:
            raise SchemaError(
                f"the database at {where} has {len(heads)} revisions in {VERSION_TABLE} "
                f"({', '.join(heads) or 'none'}), not one"
            )
        return Revision(heads[0], True)
    problem = _release_mismatch(conn, names)
    if problem:
        raise SchemaError(
            f"the database at {where} has no {VERSION_TABLE} table and its tables are not "
            f"those of a wercker-bot release ({problem}): is it a wercker-bot store?"
        )
    return Revision(FIRST_RELEASE, False)


def _where(store: Migratable) -> str:
    """The database as messages name it: the SQLite file, or the URL without password."""
    url = store.engine.url
    if url.get_backend_name() == "sqlite":
        return str(url.database)
    return url.render_as_string(hide_password=True)


def create_if_empty(store: Migratable) -> bool:
    """Creates today's schema, stamped at head, in a database with no tables at all. True
    when it did. Safe when several processes start on one new ``data_dir`` at once."""
    with store.read() as conn:
        if inspect(conn).get_table_names():
            return False
    with store.tx() as conn:  # one process creates, the others see it
        exclusive(conn, SCHEMA_LOCK)
        if inspect(conn).get_table_names():
            return False
        _create_at_head(conn)
    return True


def _create_at_head(conn: Connection) -> None:
    """Today's schema on an empty database, stamped at head: the tables, and on PostgreSQL
    procrastinate's schema too (what revision 0004 adds on the way up)."""
    from alembic.runtime.migration import MigrationContext

    metadata.create_all(conn)
    if conn.dialect.name == "postgresql":
        from bot.store.migrations.versions.m0004_procrastinate import apply_schema

        apply_schema(conn)
    MigrationContext.configure(conn).stamp(_script(), "head")


def upgrade(store: Migratable) -> list[str]:
    """Brings the database to head in one transaction (all revisions kept, or none) and
    says what it did, one line each."""
    from alembic import command
    from alembic.config import Config

    where = _where(store)
    head = head_revision()
    if store.created:
        return [f"{where}: no database there, created at {head} (head)"]
    lines: list[str] = []
    with store.tx() as conn:
        exclusive(conn, SCHEMA_LOCK)
        if conn.dialect.name == "postgresql":
            # The store's sessions stop any statement after a minute (bot.store.db); a
            # migration over a big table may rightly take longer.
            conn.exec_driver_sql("SET LOCAL statement_timeout = 0")
        rev = read_revision(conn, where)
        if rev.current is None:
            _create_at_head(conn)
            return [f"{where}: empty database, created at {head} (head)"]
        if rev.current == head:
            return [f"{where}: already at {head} (head), nothing to do"]
        if rev.current not in known_revisions():
            raise SchemaError(_unknown(where, rev.current, head))
        config = Config()
        config.set_main_option("script_location", str(SCRIPT_LOCATION))
        config.attributes["connection"] = conn
        if not rev.stamped:
            lines.append(
                f"{where}: no {VERSION_TABLE} table (created before migrations) and the first "
                f"release's tables: taken as {FIRST_RELEASE}"
            )
            command.stamp(config, FIRST_RELEASE)
        steps = list(reversed(list(_script().iterate_revisions(head, rev.current))))
        command.upgrade(config, "head")
        for step in steps:
            lines.append(
                f"{where}: {step.down_revision} -> {step.revision}: {step.doc.splitlines()[0]}"
            )
    lines.append(f"{where}: now at {head} (head)")
    return lines


def _unknown(where: str, current: str, head: str) -> str:
    return (
        f"the database at {where} is at revision {current}, which this bot does not know "
        f"(it needs {head}): a newer wercker-bot migrated it; run that one"
    )


def check_schema(store: Migratable, config_path: Path | None = None) -> None:
    """Raises ``SchemaError`` (one line: where, which revision, what to run) unless the
    database is at the head revision."""
    where = _where(store)
    head = head_revision()
    with store.read() as conn:
        rev = read_revision(conn, where)
    if rev.current == head:
        return
    if rev.current is not None and rev.current not in known_revisions():
        raise SchemaError(_unknown(where, rev.current, head))
    config = f" --config {shlex.quote(str(config_path))}" if config_path else ""
    before = "" if rev.stamped else " (created before migrations)"
    raise SchemaError(
        f"the database at {where} is at revision {rev.current or 'none'}{before}, "
        f"this bot needs {head}: run `wercker-bot migrate{config}`"
    )
