"""``ProcrastinateDispatcher.reap``: a lost worker host's attempt ends errored, its stalled
job is finished failed (never retried), and its branch's newest queued build runs: the
lost build itself, queued again, when nothing newer was pushed."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from sqlalchemy import text, update

from bot.dispatch.procrastinate import DRAIN_TASK, ProcrastinateDispatcher
from bot.models import WORKER_HOST_LOST, Result
from bot.store.schema import attempts
from tests.harness.builds import open_store
from tests.unit.dispatch.conftest import push, sha
from tests.unit.dispatch.rig import Rig, until

KEY = "acme/app@main"


@pytest.fixture
def rig(pg_url: str) -> Iterator[Rig]:
    store = open_store(pg_url)
    dispatcher = ProcrastinateDispatcher(store, pg_url, lost_after=2.0, reap_every=60, poll=0.5)
    made = Rig(store, dispatcher)
    yield made
    made.stop()
    dispatcher.close()
    store.close()


def _jobs(rig: Rig) -> list[tuple[int, str, str]]:
    with rig.store.engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT id, status, lock FROM procrastinate_jobs WHERE task_name = :t ORDER BY id"
            ),
            {"t": DRAIN_TASK},
        ).all()
    return [(int(r.id), str(r.status), str(r.lock)) for r in rows]


def test_reap_ends_a_silent_attempt_and_the_newest_build_of_its_branch_runs(rig: Rig) -> None:
    lost = push(rig.store, sha(1))
    claim = rig.store.claim_key(KEY, "lost-host:1:t:job1")  # its worker then vanished
    assert claim is not None
    queued = [push(rig.store, sha(n)) for n in (2, 3)]
    with rig.store.tx() as conn:
        conn.execute(
            update(attempts)
            .where(attempts.c.id == claim.attempt_id)
            .values(heartbeat_at=time.time() - 10)
        )
    assert rig.dispatcher.reap() == [claim.attempt_id]
    assert rig.store.attempt_state(lost, 1) == Result.ERRORED
    detail = rig.store.build_detail(lost)
    assert detail is not None and detail.attempts[0].description == WORKER_HOST_LOST
    assert [status for _, status, _ in _jobs(rig)] == ["todo"]  # the key was kicked
    rig.serve(concurrency=1)
    until(lambda: rig.passed(queued[-1]))
    assert rig.store.attempt_state(queued[0], 1) == Result.CANCELED
    assert rig.started() == [queued[-1]]


def test_reap_fails_the_stalled_job_of_a_lost_worker_and_kicks_afresh(rig: Rig) -> None:
    build = push(rig.store, sha(1))
    rig.dispatcher.kick(KEY)
    with rig.store.tx() as conn:
        worker = conn.execute(
            text(
                "INSERT INTO procrastinate_workers (last_heartbeat) "
                "VALUES (now() - interval '1 hour') RETURNING id"
            )
        ).scalar_one()
        conn.execute(
            text("UPDATE procrastinate_jobs SET status = 'doing', worker_id = :w"), {"w": worker}
        )
    [(stalled, _, _)] = _jobs(rig)
    assert rig.dispatcher.reap() == []  # no attempt was running yet
    jobs = _jobs(rig)
    assert jobs[0] == (stalled, "failed", KEY)  # finished, never retried
    assert [(status, lock) for _, status, lock in jobs[1:]] == [("todo", KEY)]
    rig.serve(concurrency=1)
    until(lambda: rig.passed(build))


def test_a_lost_build_that_is_its_branchs_newest_runs_again(rig: Rig) -> None:
    build = push(rig.store, sha(1))
    claim = rig.store.claim_key(KEY, "lost-host:1:t:job1")  # its worker then vanished
    assert claim is not None
    with rig.store.tx() as conn:
        conn.execute(
            update(attempts)
            .where(attempts.c.id == claim.attempt_id)
            .values(heartbeat_at=time.time() - 10)
        )
    assert rig.dispatcher.reap() == [claim.attempt_id]
    assert rig.store.attempt_state(build, 1) == Result.ERRORED
    assert rig.store.attempt_state(build, 2) == Result.QUEUED  # nothing lost
    rig.serve(concurrency=1)
    until(lambda: rig.store.attempt_state(build, 2) == Result.PASSED)
    assert rig.started() == [build]
    statuses = [(r.state, r.description) for r in rig.store.statuses_for("acme/app", sha(1))]
    lost_at = statuses.index(("error", WORKER_HOST_LOST))
    assert ("pending", "Queued (attempt 2)") in statuses[lost_at:]
