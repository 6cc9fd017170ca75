"""The queue (``bot.store.queue``): claims, recovery of dead workers, and the worker-side
supersede. The claim query itself skips branches with a running attempt, so no number of
queued builds behind busy branches starves another repository."""

from __future__ import annotations

import multiprocessing
import os
import queue
import subprocess
import sys
import threading

from bot.models import WORKER_DIED, Result
from bot.procs import worker_name
from bot.store.rows import NewPush
from bot.store.sql import SqlStore
from tests.harness.builds import open_store
from tests.unit.store.helpers import A, B, C, S, latest, push, push_of, state_of


def test_running_build_is_not_superseded_and_branch_runs_serially(store: SqlStore) -> None:
    store.record_push(push("a" * 40))
    running = store.claim_next("w1")
    assert running is not None
    store.record_push(push("b" * 40, before="a" * 40))
    other = store.record_push(push("c" * 40, branch="dev"))
    nxt = store.claim_next("w2")
    # main is busy, so the dev build is claimed even though it arrived later.
    assert nxt is not None and nxt.build.id == other.build_id
    assert store.claim_next("w3") is None
    store.finish_attempt(running.attempt_id, Result.PASSED, "ok")
    third = store.claim_next("w3")
    assert third is not None and third.build.sha == "b" * 40


def test_dead_worker_attempts_are_errored_and_statuses_resolved(store: SqlStore) -> None:
    store.record_push(push("a" * 40))
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    claim = store.claim_next(f"{os.uname().nodename}:{proc.pid}:w0")
    assert claim is not None
    assert store.recover_dead() == [claim.attempt_id]
    assert store.attempt_state(claim.build.id, 1) == "errored"
    assert latest(store, "a" * 40)["wb/build"] == f"error:{WORKER_DIED}"


def test_live_worker_attempts_are_left_alone(store: SqlStore) -> None:
    store.record_push(push("a" * 40))
    claim = store.claim_next(f"{os.uname().nodename}:{os.getppid()}:w0")
    assert claim is not None
    assert store.recover_dead() == []


def _claimer(db: str, n: int, out: multiprocessing.Queue[int]) -> None:
    s = open_store(db)
    for _ in range(n):
        c = s.claim_next(f"proc-{os.getpid()}")
        if c is not None:
            out.put(c.attempt_id)
            s.finish_attempt(c.attempt_id, Result.PASSED, "ok")


def test_claims_are_exclusive_across_processes(db_url: str, store: SqlStore) -> None:
    for i in range(30):
        store.record_push(push(f"{i + 1:040x}", branch=f"b{i}"))
    ctx = multiprocessing.get_context("spawn")
    out: multiprocessing.Queue[int] = ctx.Queue()
    procs = [ctx.Process(target=_claimer, args=(db_url, 20, out)) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    claimed = []
    while True:
        try:
            claimed.append(out.get(timeout=2))
        except queue.Empty:
            break
    assert len(claimed) == 30 and len(set(claimed)) == 30


def test_recovery_also_ends_the_steps_left_running(store: SqlStore) -> None:
    store.record_push(push("a" * 40))
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    claim = store.claim_next(f"{os.uname().nodename}:{proc.pid}:tok:w0")
    assert claim is not None
    pipeline = store.start_pipeline(claim.attempt_id, 0, "build")
    store.start_step(pipeline, 0, "main", "script", "slow")
    store.recover_dead()
    detail = store.build_detail(claim.build.id)
    assert detail is not None
    step = detail.attempts[0].pipelines[0].steps[0]
    assert step.state == "errored" and step.finished_at is not None
    assert step.message == WORKER_DIED


def test_worker_side_supersede_cancels_queued_and_resolves_statuses(store: SqlStore) -> None:
    a = store.record_push(push(A, before=S))
    b = store.record_push(push(B, before=S, commits=(B,), delivery="d-b2"))
    queued = store.queued_on_branch("acme/app", "main", except_build=b.build_id or 0)
    assert [(q.build_id, q.sha, q.explicit) for q in queued] == [(a.build_id, A, False)]
    assert store.supersede("acme/app", queued, B) == [queued[0].attempt_id]
    assert state_of(store, a) == "canceled"
    assert latest(store, A) == {
        "wb/build": f"error:Superseded by {B[:7]}",
        "wb/deploy": f"error:Superseded by {B[:7]}",
    }
    # Already out of the queue: left alone, and no second status.
    assert store.supersede("acme/app", queued, C) == []
    assert latest(store, A)["wb/build"] == f"error:Superseded by {B[:7]}"


def test_same_pid_under_an_earlier_token_is_dead(store: SqlStore) -> None:
    store.record_push(push_of(["build"]))
    claim = store.claim_next(f"{os.uname().nodename}:{os.getpid()}:oldtoken:w0")
    assert claim is not None
    assert store.recover_dead() == [claim.attempt_id]


def test_stale_heartbeat_is_dead_even_if_the_pid_is_alive(store: SqlStore) -> None:
    store.record_push(push_of(["build"]))
    claim = store.claim_next(f"{os.uname().nodename}:{os.getppid()}:tok:w0")
    assert claim is not None
    assert store.recover_dead() == []
    assert store.recover_dead(max_age=-1) == [claim.attempt_id]


def test_current_process_attempts_are_alive(store: SqlStore) -> None:
    store.record_push(push_of(["build"]))
    assert store.claim_next(worker_name("w0")) is not None
    assert store.recover_dead() == []


def _numbered(n: int, *, repo: str = "acme/app", branch: str = "main", tag: str = "") -> NewPush:
    return NewPush(
        hook_id="7",
        delivery_id=f"{repo}-{n}",
        repo=repo,
        ref=f"refs/tags/{tag}" if tag else f"refs/heads/{branch}",
        branch="" if tag else branch,
        git_tag=tag,
        sha=f"{n:040x}",
        before_sha="0" * 40,  # proves nothing: every build stays queued
        message="m",
        pusher="p",
        html_url="",
        pipelines=["build"],
    )


def test_sixty_queued_on_a_busy_branch_do_not_starve_another_repository(store: SqlStore) -> None:
    store.record_push(_numbered(1))
    running = store.claim_next("w1")
    assert running is not None and running.build.repo == "acme/app"
    for n in range(2, 62):  # 60 queued behind the running build of acme/app main
        store.record_push(_numbered(n))
    other = store.record_push(_numbered(100, repo="acme/other"))

    claim = store.claim_next("w2")
    assert claim is not None and claim.build.id == other.build_id
    assert store.claim_next("w3") is None  # main is still busy
    # When main is free again, its oldest queued build is next, in arrival order.
    store.finish_attempt(running.attempt_id, Result.PASSED, "ok")
    nxt = store.claim_next("w3")
    assert nxt is not None and nxt.build.sha == f"{2:040x}"


def test_queued_tag_builds_of_a_busy_repository_do_not_starve_others(store: SqlStore) -> None:
    """Tag builds share the branch "" of their repository: one running makes the rest wait,
    and the query still finds a later branch build of the same repository."""
    store.record_push(_numbered(1, tag="v1"))
    assert store.claim_next("w1") is not None
    for n in range(2, 62):
        store.record_push(_numbered(n, tag=f"v{n}"))
    main = store.record_push(_numbered(200, branch="main"))
    claim = store.claim_next("w2")
    assert claim is not None and claim.build.id == main.build_id
    assert store.claim_next("w3") is None


def test_reapers_at_once_recover_each_attempt_once(store: SqlStore) -> None:
    """Workers on several hosts reap side by side (PostgreSQL): an attempt is errored and
    its statuses resolved once, and one a worker has just finished is left as it ended."""
    for b in range(6):
        store.record_push(push(f"{b + 1:040x}", branch=f"b{b}"))
    claims = [store.claim_next(f"gone-host:{n}:w0") for n in range(6)]
    assert all(c is not None for c in claims)
    finished = claims[0]
    assert finished is not None
    store.finish_attempt(finished.attempt_id, Result.PASSED, "ok")
    barrier = threading.Barrier(4)
    recovered: list[int] = []
    lock = threading.Lock()

    def reap() -> None:
        barrier.wait()
        ids = store.recover_dead(max_age=-1)
        with lock:
            recovered.extend(ids)

    threads = [threading.Thread(target=reap) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    expected = sorted(c.attempt_id for c in claims[1:] if c is not None)
    assert sorted(recovered) == expected
    assert store.attempt_state(finished.build.id, 1) == Result.PASSED
    for c in claims[1:]:
        assert c is not None
        errors = [r for r in store.statuses_for("acme/app", c.build.sha) if r.state == "error"]
        assert len(errors) == 2  # wb/build and wb/deploy, once each
