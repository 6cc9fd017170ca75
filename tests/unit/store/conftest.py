"""The ``store`` fixture: a real ``SqlStore`` on a new database, once on SQLite (a file in
``tmp_path``) and once on PostgreSQL (a fresh database of the ``postgres`` fixture's
server, ``tests/harness/postgres.py``), so every contract test runs on both dialects."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.store.sql import SqlStore
from tests.harness.builds import open_store

DIALECTS = ["sqlite", "postgresql"]


@pytest.fixture(params=DIALECTS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of a new, empty-of-rows database at head: SQLite or PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'db.sqlite3'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def store(db_url: str) -> Iterator[SqlStore]:
    store = open_store(db_url)
    yield store
    store.close()
