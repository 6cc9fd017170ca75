"""The ``store`` fixture: a real ``SqlStore`` on a new database in ``tmp_path``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.store.sql import SqlStore
from tests.harness.builds import open_store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlStore]:
    store = open_store(tmp_path / "db.sqlite3")
    yield store
    store.close()
