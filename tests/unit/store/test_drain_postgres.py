"""The store's drain under scale-out failures, on a real PostgreSQL (workers on several
hosts): a claimer paused mid-claim, hosts whose clocks disagree, a restart racing a
recovery, and sessions a paused or vanished client leaves open."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import Connection, func, select, text

from bot.errors import StoreUnavailable
from bot.models import WORKER_DIED, Result
from bot.procs import worker_name
from bot.store import db as store_db
from bot.store import drain, queue
from bot.store.schema import attempts
from bot.store.sql import SqlStore
from tests.harness.builds import open_store
from tests.unit.dispatch.conftest import push, sha

KEY = "acme/app@main"
WAIT = 10.0


@pytest.fixture
def pg_store(pg_url: str) -> Iterator[SqlStore]:
    store = open_store(pg_url)
    yield store
    store.close()


def _until(what: Callable[[], object]) -> None:
    deadline = time.monotonic() + WAIT
    while not what():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def _running(store: SqlStore) -> list[int]:
    with store.engine.connect() as conn:
        return list(
            conn.execute(select(attempts.c.id).where(attempts.c.state == Result.RUNNING)).scalars()
        )


def _lock_waiters(store: SqlStore) -> int:
    """Sessions of this database waiting for a lock (a row or an advisory lock)."""
    with store.engine.connect() as conn:
        return int(
            conn.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                    " AND wait_event_type = 'Lock'"
                )
            ).scalar_one()
        )


def _thread(target: Callable[[], Any], name: str, out: dict[str, Any]) -> threading.Thread:
    def run() -> None:
        out[name] = target()

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    return thread


def test_a_claimer_paused_after_its_running_check_never_runs_a_second_attempt(
    pg_store: SqlStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    paused, resume = threading.Event(), threading.Event()
    real = drain._running_in_key

    def pausing(conn: Connection, key: str) -> bool:
        found = real(conn, key)
        if threading.current_thread().name == "paused":
            paused.set()
            resume.wait(WAIT)
        return found

    monkeypatch.setattr(drain, "_running_in_key", pausing)
    push(pg_store, sha(1))
    out: dict[str, Any] = {}
    first = _thread(lambda: pg_store.claim_key(KEY, "host-a:job1"), "paused", out)
    assert paused.wait(WAIT)  # inside its claim, having found nothing running
    second = _thread(lambda: pg_store.claim_key(KEY, "host-b:job2"), "other", out)
    second.join(timeout=1.0)  # unserialised, it claims sha(1) meanwhile and commits
    push(pg_store, sha(2))  # a new push the paused claimer sees when it resumes
    resume.set()
    first.join(WAIT)
    second.join(WAIT)
    assert not first.is_alive() and not second.is_alive()
    assert len(_running(pg_store)) == 1  # one attempt of the key runs, never two
    claims = [c for c in (out["paused"], out["other"]) if c is not None]
    assert [c.build.sha for c in claims] == [sha(2)]  # the paused one saw the newest push


def test_heartbeats_and_the_reap_cutoff_are_the_database_clock(
    pg_store: SqlStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = time.time
    push(pg_store, sha(3), branch="embedded")  # the oldest: what claim_next takes
    push(pg_store, sha(1))
    push(pg_store, sha(2), branch="dev")
    monkeypatch.setattr(time, "time", lambda: real() - 3600)  # a host an hour slow
    embedded = pg_store.claim_next(worker_name())
    assert embedded is not None and embedded.build.branch == "embedded"
    pg_store.heartbeat(embedded.attempt_id)
    slow = pg_store.claim_key(KEY, "slow-host:job1")
    assert slow is not None and pg_store.fence(slow.attempt_id, "slow-host:job1")
    monkeypatch.setattr(time, "time", lambda: real() + 3600)  # another an hour fast
    fast = pg_store.claim_key("acme/app@dev", "fast-host:job2")
    assert fast is not None
    assert pg_store.reap_lost(lost_after=30) == []  # no live build is reaped
    assert pg_store.recover_dead(max_age=30) == []
    assert len(_running(pg_store)) == 3
    monkeypatch.setattr(time, "time", real)
    with pg_store.tx() as conn:  # the database's clock moves on: a minute of silence
        conn.execute(text("UPDATE attempts SET heartbeat_at = heartbeat_at - 60"))
    reaped = pg_store.reap_lost(lost_after=30)
    assert sorted(r.attempt_id for r in reaped) == sorted(
        [slow.attempt_id, fast.attempt_id, embedded.attempt_id]
    )


def test_a_restart_racing_a_recovery_changes_nothing_once_the_recovery_ends_it(
    pg_store: SqlStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    build = push(pg_store, sha(1))
    claim = pg_store.claim_key(KEY, "host-a:job1")
    assert claim is not None
    ended, resume = threading.Event(), threading.Event()
    real = queue.error_open_rows

    def pausing(conn: Connection, attempt_id: int, description: str, now: float) -> None:
        real(conn, attempt_id, description, now)
        if threading.current_thread().name == "recovery":
            ended.set()  # the attempt is errored, not yet committed, its row locked
            resume.wait(WAIT)

    monkeypatch.setattr(queue, "error_open_rows", pausing)
    out: dict[str, Any] = {}
    recovery = _thread(lambda: pg_store.recover_dead(max_age=-60), "recovery", out)
    assert ended.wait(WAIT)
    restart = _thread(lambda: pg_store.restart_attempt(claim.attempt_id, "stopping"), "r", out)
    _until(lambda: _lock_waiters(pg_store) >= 1)  # the restart waits for the attempt's row
    resume.set()
    recovery.join(WAIT)
    restart.join(WAIT)
    assert out["recovery"] == [claim.attempt_id]
    assert out["r"] is None  # it found the attempt ended: nothing re-queued, nothing overwritten
    detail = pg_store.build_detail(build)
    assert detail is not None
    assert [(a.number, a.state, a.description) for a in detail.attempts] == [
        (1, Result.ERRORED, WORKER_DIED)
    ]


def test_a_restart_under_another_token_changes_nothing(store: SqlStore) -> None:
    build = push(store, sha(1))
    claim = store.claim_key(KEY, "host-a:job1")
    assert claim is not None
    assert store.restart_attempt(claim.attempt_id, "stopping", worker="host-b:job2") is None
    assert store.attempt_state(build, 1) == Result.RUNNING
    assert store.attempt_state(build, 2) is None
    assert store.restart_attempt(claim.attempt_id, "stopping", worker="host-a:job1") == 2


def test_every_store_session_has_its_timeouts_and_keepalives(pg_store: SqlStore) -> None:
    with pg_store.tx() as conn:
        shown = {
            name: conn.execute(text(f"SHOW {name}")).scalar_one()
            for name in (
                "idle_in_transaction_session_timeout",
                "statement_timeout",
                "lock_timeout",
                "tcp_keepalives_idle",
            )
        }
        params = conn.connection.dbapi_connection.info.get_parameters()  # type: ignore[union-attr]
    assert shown == {
        "idle_in_transaction_session_timeout": "20s",
        "statement_timeout": "1min",
        "lock_timeout": "1min",
        "tcp_keepalives_idle": "10",
    }
    assert (params["keepalives"], params["keepalives_idle"]) == ("1", "10")


def test_a_paused_clients_transaction_is_ended_and_its_locks_freed(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_db, "PG_IDLE_IN_TX_TIMEOUT_MS", 300)
    store = open_store(pg_url)
    try:
        push(store, sha(1))
        claim = store.claim_key(KEY, "w1")
        assert claim is not None
        # The server ended the session: the paused client learns it on its next statement.
        with pytest.raises(StoreUnavailable), store.tx() as paused:
            paused.execute(
                select(attempts.c.id).where(attempts.c.id == claim.attempt_id).with_for_update()
            )
            time.sleep(1.0)  # the client is paused holding the row lock
            paused.execute(select(func.now()))
        with store.engine.connect() as conn:
            conn.execute(text("SET lock_timeout = 2000"))
            locked = conn.execute(
                select(attempts.c.id)
                .where(attempts.c.id == claim.attempt_id)
                .with_for_update(nowait=True)
            ).scalar_one()
            conn.rollback()
        assert locked == claim.attempt_id  # the row is free for the reaper and the rest
    finally:
        store.close()
