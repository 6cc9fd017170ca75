"""The database (``bot.store.db``): reads, like writes, fail as ``StoreUnavailable`` with
SQLite's own one-line reason, never as a driver error."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.exc import OperationalError

from bot.errors import StoreUnavailable
from bot.store.db import Database, sqlite_reason
from bot.store.sql import SqlStore
from tests.harness.builds import claimed_attempt, open_store

READS: dict[str, Callable[[SqlStore], Any]] = {
    "list_builds": lambda s: s.list_builds(),
    "build_detail": lambda s: s.build_detail(1),
    "attempt_state": lambda s: s.attempt_state(1, 1),
    "statuses_for": lambda s: s.statuses_for("acme/app", "a" * 40),
    "outbox_backlog": lambda s: s.outbox_backlog(),
    "latest": lambda s: s.latest("acme/app", "a" * 40),
    "log_page": lambda s: s.log_page(1),
    "log_text": lambda s: s.log_text(1),
    "log_tail": lambda s: s.log_tail(1),
    "iter_log": lambda s: list(s.iter_log(1)),
    "log_attempt_id": lambda s: s.log_attempt_id(1, 1),
    "running_attempt_ids": lambda s: s.running_attempt_ids(),
    "queued_on_branch": lambda s: s.queued_on_branch("acme/app", "main", 0),
    "newest_built_sha": lambda s: s.newest_built_sha("acme/app", "main", 10),
}


@pytest.mark.parametrize("read", READS.values(), ids=READS.keys())
def test_a_read_on_a_broken_database_raises_store_unavailable(
    tmp_path: Path, read: Callable[[SqlStore], Any]
) -> None:
    store = open_store(tmp_path / "data" / "db.sqlite3")
    claimed_attempt(store)
    read(store)  # works while the database is there
    store.close()
    # The database's directory is gone (an unmounted volume): SQLite cannot open the file.
    (tmp_path / "data").rename(tmp_path / "elsewhere")
    with pytest.raises(StoreUnavailable) as caught:
        read(store)
    assert caught.value.reason == "unable to open database file"
    assert isinstance(caught.value.__cause__, OperationalError)


def test_a_read_that_the_driver_interrupts_raises_store_unavailable(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    with db.tx() as conn:
        conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
    db.close()
    # Every statement is interrupted by SQLite itself: a real OperationalError mid-read.
    from sqlalchemy import event

    @event.listens_for(db.engine, "connect")
    def _interrupt(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.set_progress_handler(lambda: 1, 1)

    with pytest.raises(StoreUnavailable) as caught, db.read() as conn:
        conn.exec_driver_sql("SELECT * FROM t").all()
    assert caught.value.reason == "interrupted"


def test_other_errors_in_a_read_pass_through(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    with pytest.raises(ValueError), db.read():
        raise ValueError("caller's own error")


def test_sqlite_reason_is_one_line_without_the_statement() -> None:
    err = OperationalError(
        "INSERT INTO logs VALUES (?)",
        ("secret log text",),
        sqlite3.OperationalError("disk I/O error\nmore"),
    )
    assert sqlite_reason(err) == "disk I/O error"


def test_a_new_database_is_created_with_its_directory(tmp_path: Path) -> None:
    store = open_store(tmp_path / "a" / "b" / "db.sqlite3")
    assert store.created and (tmp_path / "a" / "b" / "db.sqlite3").exists()
    store.close()
    again = open_store(tmp_path / "a" / "b" / "db.sqlite3")
    assert not again.created
    again.close()
