"""Builds in a real store, for tests that need an attempt to write to."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bot.reporter import Reporter
from bot.store.base import Store
from bot.store.rows import NewPush
from bot.store.sql import SqlStore


def open_store(where: Path | str) -> SqlStore:
    """A store on ``where`` (a SQLite file, or a database URL such as the ``postgres``
    fixture's) whose reporter names contexts ``wb/<pipeline>`` and links builds to
    ``http://bot/builds/<id>``."""
    url = where if isinstance(where, str) else f"sqlite:///{where}"
    return SqlStore(url, Reporter("wb", "http://bot"))


def sql_store(store: Store) -> SqlStore:
    """``store`` as the SQL store it is, for a test that reaches its database directly."""
    assert isinstance(store, SqlStore), f"a SqlStore is needed here, not {type(store)}"
    return store


def new_push(**fields: Any) -> NewPush:
    """A push of ``acme/app`` ``main`` at ``a…a``; ``fields`` override any of it."""
    values: dict[str, Any] = {
        "hook_id": "1",
        "delivery_id": "d",
        "repo": "acme/app",
        "ref": "refs/heads/main",
        "branch": "main",
        "git_tag": "",
        "sha": "a" * 40,
        "before_sha": "0" * 40,
        "message": "",
        "pusher": "",
        "html_url": "",
        "pipelines": ["build"],
    }
    values.update(fields)
    return NewPush(**values)


def claimed_attempt(store: Store, **fields: Any) -> int:
    """Records ``new_push(**fields)``, claims it, and returns the attempt's id."""
    store.record_push(new_push(**fields))
    claim = store.claim_next("w")
    assert claim is not None
    return claim.attempt_id
