"""The database on PostgreSQL (``bot.store.db``): a server that is down, a database that is
gone and a connection lost mid-transaction fail as ``StoreUnavailable`` with the server's
one-line reason, naming the URL without its password and never the SQL text; nothing of
the failed transaction is kept, and the store reconnects afterwards."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.errors import StoreUnavailable
from bot.store.db import Database, pg_reason
from bot.store.schema import logs
from bot.store.sql import SqlStore
from tests.harness.builds import claimed_attempt, open_store
from tests.harness.postgres import Postgres, free_port
from tests.unit.store.test_db import READS

PASSWORD = "s3cret-pw"


def test_a_server_that_is_down_is_store_unavailable_without_the_password() -> None:
    url = f"postgresql+psycopg://bot:{PASSWORD}@127.0.0.1:{free_port()}/bot"
    where = url.replace(PASSWORD, "***")
    db = Database(url)
    assert db.where == where
    for use in (db.tx, db.read):
        with pytest.raises(StoreUnavailable) as caught, use() as conn:
            conn.execute(select(1))
        reason = caught.value.reason
        assert reason.startswith(f"PostgreSQL at {where}: connection failed: ")
        assert reason.endswith("Connection refused") and "\n" not in reason
        assert PASSWORD not in str(caught.value)
    # Opening a store (which looks for its tables) fails the same way, not as a traceback.
    with pytest.raises(StoreUnavailable) as opening:
        open_store(url)
    assert "Connection refused" in opening.value.reason and PASSWORD not in opening.value.reason


def test_pg_reason_is_one_line_and_masks_the_password_if_the_driver_echoes_it() -> None:
    err = RuntimeError(f"password authentication failed: {PASSWORD}\nDETAIL: INSERT …")
    assert pg_reason(err, "postgresql+psycopg://bot:***@h/db", PASSWORD) == (
        "PostgreSQL at postgresql+psycopg://bot:***@h/db: password authentication failed: ***"
    )


@pytest.mark.parametrize("read", READS.values(), ids=READS.keys())
def test_a_read_of_a_database_that_is_gone_raises_store_unavailable(
    postgres: Postgres, read: Callable[[SqlStore], Any]
) -> None:
    name = postgres.new_database()
    store = open_store(postgres.url(name))
    claimed_attempt(store)
    read(store)  # works while the database is there
    store.close()
    postgres.drop_database(name)
    with pytest.raises(StoreUnavailable) as caught:
        read(store)
    assert caught.value.reason.startswith(f"PostgreSQL at {postgres.url(name)}: ")
    assert caught.value.reason.endswith(f'database "{name}" does not exist')


def test_a_connection_lost_mid_transaction_keeps_nothing_and_the_store_reconnects(
    postgres: Postgres, pg_url: str
) -> None:
    store = open_store(pg_url)
    attempt = claimed_attempt(store)
    name = pg_url.rsplit("/", 1)[1]
    with pytest.raises(StoreUnavailable) as caught, store.tx() as conn:
        conn.execute(logs.insert().values(attempt_id=attempt, text="lost", created_at=0))
        # The server ends this session (a restart, a failover, an admin's kill).
        postgres.admin(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            f"WHERE datname = '{name}' AND pid <> pg_backend_pid()"
        )
        conn.execute(select(func.count()).select_from(logs))
    reason = caught.value.reason
    assert "terminating connection due to administrator command" in reason
    assert "\n" not in reason and "INSERT" not in reason and "SELECT" not in reason
    # The pool hands out a live connection next (pool_pre_ping), and the row was not kept.
    store.append_log(attempt, "kept\n")
    assert store.log_page(attempt, 0).text == "kept\n"
    store.close()
