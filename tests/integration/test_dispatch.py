"""Losing a worker host on PostgreSQL: two real ``procrastinate`` worker processes
(``ProcrastinateDispatcher.serve``), one ``kill -9``ed (its whole process group) in the
middle of a build; the other reaps it and the branch's newest build still runs. One paused
(SIGSTOP) past ``lost_after`` is reaped, and on resuming its step process is killed and it
writes nothing. One stopped (SIGTERM) with a build running longer than ``lost_after`` keeps
its attempt to the end, and no other host starts the key meanwhile.

Each worker runs the dispatcher's real ``serve`` with a handler that starts a "step" process
(``sleep``, stopped through ``StoreFence.on_refused`` as ``WorkerPool`` stops its step), marks
what it started in a directory, holds a build while the test keeps its ``hold-<build>``
file, then ends the attempt through its fence."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from bot.dispatch.procrastinate import ProcrastinateDispatcher
from bot.models import WORKER_HOST_LOST, Result
from bot.store.sql import SqlStore
from tests.harness.builds import new_push, open_store

ROOT = Path(__file__).resolve().parents[2]
KEY = "acme/app@main"
LOST_AFTER = 2.0
WAIT_SECONDS = 45.0
SHA1 = f"{1:040x}"

WORKER = """
import logging, os, signal, subprocess, sys, threading, time
from pathlib import Path
from bot.dispatch.base import AttemptFenced
from bot.dispatch.fence import FencedStore
from bot.dispatch.procrastinate import ProcrastinateDispatcher
from bot.models import Result
from bot.reporter import Reporter
from tests.harness.builds import open_store

url, marks, lost_after = sys.argv[1], Path(sys.argv[2]), float(sys.argv[3])
logging.basicConfig(level=logging.WARNING)
store = open_store(url)
dispatcher = ProcrastinateDispatcher(
    store, url, lost_after=lost_after, reap_every=0.5, poll=0.5
)
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())

def handle(claim, fence):
    # What bot.build does at the end of an attempt, through the fenced store.
    build = claim.build
    step = subprocess.Popen(["sleep", "600"])  # killed with the host's group at teardown
    fence.on_refused(step.kill)
    (marks / f"step-{build.id}-{step.pid}").touch()
    (marks / f"started-{build.id}-{os.getpid()}").touch()
    while (marks / f"hold-{build.id}").exists():
        time.sleep(0.05)
    fenced = FencedStore(store, fence)
    report = Reporter("wb", "http://bot").for_build(fenced, build.repo, build.sha, build.id)
    try:
        report.attempt_finished(["build"], Result.PASSED, "ok")
        fenced.finish_attempt(claim.attempt_id, Result.PASSED, "ok")
    except AttemptFenced:
        (marks / f"fenced-{build.id}-{os.getpid()}").touch()
        raise

dispatcher.serve(handle, 2, stop)
dispatcher.close()
store.close()
"""


def _until(what: object, timeout: float = WAIT_SECONDS) -> None:
    deadline = time.monotonic() + timeout
    while not what():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def _push(store: SqlStore, n: int) -> int:
    commit = f"{n:040x}"
    intake = store.record_push(new_push(sha=commit, delivery_id=f"d{n}"))
    assert intake.build_id is not None
    return intake.build_id


@pytest.fixture
def workers(pg_url: str, tmp_path: Path) -> Iterator[tuple[list[subprocess.Popen[bytes]], Path]]:
    marks = tmp_path / "marks"
    marks.mkdir()
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, pg_url, str(marks), str(LOST_AFTER)],
            cwd=ROOT,
            start_new_session=True,  # its own process group: kill -9 takes the whole host
        )
        for _ in range(2)
    ]
    yield procs, marks
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def test_kill_9_of_a_worker_mid_build_the_newest_build_still_runs(
    pg_url: str, workers: tuple[list[subprocess.Popen[bytes]], Path]
) -> None:
    procs, marks = workers
    store = open_store(pg_url)
    kicker = ProcrastinateDispatcher(store, pg_url, lost_after=LOST_AFTER, reap_every=60)
    try:
        first = _push(store, 1)
        (marks / f"hold-{first}").touch()  # the first build blocks until its host dies
        kicker.kick(KEY)
        host = _started_host(marks, first)
        older, newest = _push(store, 2), _push(store, 3)
        kicker.kick(KEY)
        victim = next(p for p in procs if p.pid == host)
        os.killpg(victim.pid, signal.SIGKILL)
        victim.wait(timeout=10)

        _until(lambda: store.attempt_state(newest, 1) == Result.PASSED)
        detail = store.build_detail(first)
        assert detail is not None
        assert (detail.attempts[0].state, detail.attempts[0].description) == (
            Result.ERRORED,
            WORKER_HOST_LOST,
        )
        assert store.attempt_state(older, 1) == Result.CANCELED
        assert store.attempt_state(first, 2) is None  # a newer push supersedes: not re-queued
        assert [(r.state, r.description) for r in store.latest("acme/app", SHA1)] == [
            ("error", WORKER_HOST_LOST)
        ]
        survivor = next(p for p in procs if p.pid != host)
        assert list(marks.glob(f"started-{newest}-{survivor.pid}"))
        assert not list(marks.glob(f"started-{older}-*"))  # superseded builds never start
        _until(lambda: _doing(store) == 0)  # the lost host's job too: finished failed
    finally:
        kicker.close()
        store.close()


def _doing(store: SqlStore) -> int:
    with store.engine.connect() as conn:
        return int(
            conn.execute(
                text("SELECT count(*) FROM procrastinate_jobs WHERE status = 'doing'")
            ).scalar_one()
        )


def _started_host(marks: Path, build: int) -> int:
    _until(lambda: list(marks.glob(f"started-{build}-*")))
    [mark] = list(marks.glob(f"started-{build}-*"))
    return int(mark.name.rsplit("-", 1)[1])


def test_a_paused_worker_is_reaped_and_fenced_when_it_resumes(
    pg_url: str, workers: tuple[list[subprocess.Popen[bytes]], Path]
) -> None:
    procs, marks = workers
    store = open_store(pg_url)
    kicker = ProcrastinateDispatcher(store, pg_url, lost_after=LOST_AFTER, reap_every=60)
    try:
        first = _push(store, 1)
        (marks / f"hold-{first}").touch()
        kicker.kick(KEY)
        host = _started_host(marks, first)
        newest = _push(store, 2)
        kicker.kick(KEY)
        os.killpg(host, signal.SIGSTOP)  # the zombie: paused past the reaper's timeout
        try:
            _until(lambda: store.attempt_state(newest, 1) == Result.PASSED)
            assert store.attempt_state(first, 1) == Result.ERRORED
            resolved = [(r.state, r.description) for r in store.statuses_for("acme/app", SHA1)]
            (marks / f"hold-{first}").unlink()  # it will try to pass its build on resuming
        finally:
            os.killpg(host, signal.SIGCONT)
        _until(lambda: list(marks.glob(f"fenced-{first}-{host}")))
        detail = store.build_detail(first)
        assert detail is not None
        assert (detail.attempts[0].state, detail.attempts[0].description) == (
            Result.ERRORED,
            WORKER_HOST_LOST,
        )
        assert [(r.state, r.description) for r in store.statuses_for("acme/app", SHA1)] == (
            resolved
        )
        assert all(p.poll() is None for p in procs)  # the refusal did not kill the zombie
        # ... but it killed the zombie's step (the fence's ``on_refused``), within seconds.
        [step] = [int(m.name.rsplit("-", 1)[1]) for m in marks.glob(f"step-{first}-*")]
        _until(lambda: not _alive(step), timeout=5)
    finally:
        kicker.close()
        store.close()


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting for its parent's ``wait`` does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _job_status(store: SqlStore, build: int) -> str | None:
    """The status of the drain job that started ``build``'s first attempt (its token ends
    with ``job<N>``)."""
    with store.engine.connect() as conn:
        worker = conn.execute(
            text("SELECT worker FROM attempts WHERE build_id = :b AND number = 1"), {"b": build}
        ).scalar_one()
        job = int(str(worker).rsplit("job", 1)[1])
        status = conn.execute(
            text("SELECT status FROM procrastinate_jobs WHERE id = :j"), {"j": job}
        ).scalar_one_or_none()
    return None if status is None else str(status)


def test_a_stop_whose_grace_outlasts_lost_after_keeps_its_attempt(
    pg_url: str, workers: tuple[list[subprocess.Popen[bytes]], Path]
) -> None:
    """The decision of ``bot.dispatch.procrastinate`` (module docstring, "Shutdown"): the
    stopping worker's procrastinate heartbeat stops, so the other host fails its job, but
    the attempt's own beat keeps it from being reaped, no other host starts the key, and
    the next build runs once it ends."""
    procs, marks = workers
    store = open_store(pg_url)
    kicker = ProcrastinateDispatcher(store, pg_url, lost_after=LOST_AFTER, reap_every=60)
    try:
        first = _push(store, 1)
        (marks / f"hold-{first}").touch()
        kicker.kick(KEY)
        host = _started_host(marks, first)
        stopping = next(p for p in procs if p.pid == host)
        os.kill(host, signal.SIGTERM)  # stop: no more claims, the running build goes on
        # The other host sees the stopped procrastinate worker as stalled: its job failed.
        _until(lambda: _job_status(store, first) == "failed", timeout=LOST_AFTER * 10)
        newest = _push(store, 2)
        kicker.kick(KEY)
        time.sleep(LOST_AFTER * 2)  # reaped by now, were the attempt's beat gone too
        assert store.attempt_state(first, 1) == Result.RUNNING
        assert not list(marks.glob(f"started-{newest}-*"))  # never two builds of one key
        assert stopping.poll() is None  # still in its grace
        (marks / f"hold-{first}").unlink()
        _until(lambda: store.attempt_state(first, 1) == Result.PASSED)
        _until(lambda: store.attempt_state(newest, 1) == Result.PASSED)
        assert stopping.wait(timeout=WAIT_SECONDS) == 0
        survivor = next(p for p in procs if p.pid != host)
        assert list(marks.glob(f"started-{newest}-{survivor.pid}"))
    finally:
        kicker.close()
        store.close()
