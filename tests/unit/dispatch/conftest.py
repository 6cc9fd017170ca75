"""Fixtures of the dispatcher tests: a real ``SqlStore`` on SQLite and on PostgreSQL (the
``postgres`` harness, ``tests/harness/postgres.py``), and pushes to fill it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.store.sql import SqlStore
from tests.harness.builds import new_push, open_store


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A new database at head: a SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'db.sqlite3'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def store(db_url: str) -> Iterator[SqlStore]:
    store = open_store(db_url)
    yield store
    store.close()


@pytest.fixture
def pg_store(pg_url: str) -> Iterator[SqlStore]:
    """A store on PostgreSQL only (procrastinate's dispatcher needs it)."""
    store = open_store(pg_url)
    yield store
    store.close()


def push(store: SqlStore, sha: str, *, branch: str = "main", repo: str = "acme/app",
         explicit_delivery: str | None = None, tag: str = "") -> int:  # fmt: skip
    """Stores a push of ``sha`` (no proven ancestry: it stays queued); its build id."""
    ref = f"refs/tags/{tag}" if tag else f"refs/heads/{branch}"
    intake = store.record_push(
        new_push(
            sha=sha, repo=repo, branch="" if tag else branch, git_tag=tag, ref=ref,
            delivery_id=explicit_delivery or f"d-{repo}-{branch}-{tag}-{sha}",
        )
    )  # fmt: skip
    assert intake.build_id is not None
    return intake.build_id


def sha(n: int) -> str:
    """A distinct full commit id."""
    return f"{n:040x}"
