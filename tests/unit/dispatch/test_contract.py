"""The ``Dispatcher`` contract (``bot.dispatch.base``), for both implementations: the
embedded one on SQLite and procrastinate's on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from bot.dispatch.embedded import EmbeddedDispatcher
from bot.dispatch.procrastinate import ProcrastinateDispatcher
from tests.harness.builds import open_store
from tests.unit.dispatch.conftest import push, sha
from tests.unit.dispatch.rig import Rig, until

KEY = "acme/app@main"


def _procrastinate(url: str) -> Rig:
    store = open_store(url)
    dispatcher = ProcrastinateDispatcher(store, url, lost_after=2.0, reap_every=0.5, poll=0.5)
    return Rig(store, dispatcher)


@pytest.fixture(params=["embedded", "procrastinate"])
def rig(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Rig]:
    if request.param == "embedded":
        store = open_store(tmp_path / "db.sqlite3")
        made = Rig(store, EmbeddedDispatcher(store, poll=0.05))
    else:
        made = _procrastinate(str(request.getfixturevalue("pg_url")))
    yield made
    made.stop()
    if isinstance(made.dispatcher, ProcrastinateDispatcher):
        made.dispatcher.close()
    made.store.close()


def _drain_jobs(rig: Rig, status: str) -> int:
    """How many procrastinate drain jobs are in ``status`` (0 on SQLite: there are none)."""
    if not isinstance(rig.dispatcher, ProcrastinateDispatcher):
        return 0
    with rig.store.engine.connect() as conn:
        return int(
            conn.execute(
                text("SELECT count(*) FROM procrastinate_jobs WHERE status = :s"), {"s": status}
            ).scalar_one()
        )


def test_kick_is_idempotent(rig: Rig) -> None:
    build = push(rig.store, sha(1))
    for _ in range(3):
        rig.dispatcher.kick(KEY)
    assert _drain_jobs(rig, "todo") <= 1
    rig.serve(concurrency=2)
    until(lambda: rig.passed(build))
    until(lambda: _drain_jobs(rig, "todo") + _drain_jobs(rig, "doing") == 0)
    assert rig.started() == [build]


def test_one_running_per_key_and_the_newest_build_runs(rig: Rig) -> None:
    first = push(rig.store, sha(1))
    rig.hold(first)
    rig.dispatcher.kick(KEY)
    rig.serve(concurrency=3)
    until(lambda: rig.started() == [first])
    later = [push(rig.store, sha(n)) for n in (2, 3)]
    other = push(rig.store, sha(4), branch="dev")
    for key in (KEY, KEY, "acme/app@dev"):
        rig.dispatcher.kick(key)
    until(lambda: rig.passed(other))  # another key is not held up by the busy one
    assert rig.started() == [first, other]
    rig.release(first)
    until(lambda: rig.passed(later[-1]))
    assert rig.max_overlap_per_key() == 1
    assert rig.started()[-1] == later[-1]


def test_keys_start_in_arrival_order(rig: Rig) -> None:
    keys = ["acme/app@c", "acme/app@a", "acme/app@b"]
    builds = [push(rig.store, sha(n), branch=k.split("@")[1]) for n, k in enumerate(keys)]
    for key in keys:
        rig.dispatcher.kick(key)
    rig.serve(concurrency=1)
    until(lambda: all(rig.passed(b) for b in builds))
    assert rig.started() == builds


def test_a_build_whose_kick_was_lost_runs_after_reconcile(rig: Rig) -> None:
    build = push(rig.store, sha(1))  # stored, then the process died before its kick
    kicked = rig.dispatcher.reconcile()
    if isinstance(rig.dispatcher, ProcrastinateDispatcher):
        assert kicked == [KEY]
        assert rig.dispatcher.reconcile() == []  # its wake-up now waits: not kicked twice
    else:
        assert kicked == []  # the embedded claim loops poll the store: nothing is lost
    rig.serve(concurrency=1)
    until(lambda: rig.passed(build))
