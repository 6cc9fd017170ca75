"""The worker pool's claim loop and its graceful shutdown."""

from __future__ import annotations

import dataclasses
import functools
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from bot import buildlog, worker
from bot.build import execute
from bot.dispatch.base import StoreFence
from bot.dispatch.embedded import EmbeddedDispatcher
from bot.images import ImageRef
from bot.logarchive import AttemptRef
from bot.logs import Log
from bot.models import WORKER_HOST_LOST, WORKER_RESTARTED, Result
from bot.outbox import StatusDelivery
from bot.reporter import Reporter
from bot.runners.base import ABORTED, Abort, GuestPaths, ScriptResult, Timeouts, Workspace
from bot.services import Services
from bot.settings import parse_settings
from bot.store.rows import Claim
from bot.store.sql import SqlStore
from bot.wiring import build_credentials, build_engine_pusher, build_pusher, build_runners
from tests.fakes.forge import FakeForge
from tests.fakes.logarchive import FakeLogArchive
from tests.fakes.store import FakeStore
from tests.harness.builds import new_push, open_store
from tests.harness.gitrepo import make_remote

# -- graceful shutdown (issue 11 item 4) ------------------------------------------------------
# The pool runs real attempts (a real git checkout, the real reporter) on the in-memory store,
# with a fake runner whose script steps are Python callables: a step "runs" until its
# ``Timeouts.abort`` is set (the runners' watchdog answers the abort the same way).

STEPS_YML = (
    "build:\n  steps:\n"
    "    - script:\n        name: long\n        code: sleep\n"
    "    - script:\n        name: next\n        code: 'true'\n"
    "  after-steps:\n    - script:\n        name: notify\n        code: echo notify\n"
)


class _Step:
    """What the fake session's script steps do: each call to ``run`` is one step. It waits
    for the abort (``wait_for_abort``) or passes after ``seconds``; the step whose code is
    ``abort_on`` sets ``abort`` itself and still passes (a push, never cut halfway)."""

    def __init__(self, seconds: float = 0.0, wait_for_abort: bool = False) -> None:
        self.seconds = seconds
        self.wait_for_abort = wait_for_abort
        self.started = threading.Event()
        self.calls: list[str] = []
        self.abort_on = ""  # the step (by code) during which ``abort`` is set
        self.abort = Abort()

    def run(self, code: str, timeouts: Timeouts) -> ScriptResult:
        self.calls.append(code)
        self.started.set()
        if code == self.abort_on:
            self.abort.set("canceled", requeue=True)
        if self.wait_for_abort:
            assert timeouts.abort is not None, "the step's timeouts carry the attempt's abort"
            deadline = time.monotonic() + 30
            while not timeouts.abort.is_set() and time.monotonic() < deadline:
                time.sleep(0.02)
            return ScriptResult(137, ABORTED)
        time.sleep(self.seconds)
        return ScriptResult(0)


class _Session:
    kind = "fake"
    can_commit = False

    def __init__(self, workspace: Workspace, step: _Step) -> None:
        self.step = step
        self.paths = GuestPaths(
            str(workspace.root), str(workspace.source), str(workspace.source),
            str(workspace.output), str(workspace.cache),
        )  # fmt: skip

    def run_script(
        self, code: str, *, env: dict[str, str], secrets: dict[str, str], cwd: str,
        timeouts: Timeouts, log: Log,
    ) -> ScriptResult:  # fmt: skip
        return self.step.run(code, timeouts)

    def collect(self, guest_dir: str) -> Path:
        return Path(guest_dir)

    def put_dir(self, source: Path, name: str) -> str:
        raise AssertionError("no step package here")

    def restart(self, log: Log) -> None:
        pass

    def close(self) -> None:
        pass


class _Runner:
    kind = "fake"

    def __init__(self, step: _Step) -> None:
        self.step = step

    def open(
        self, box: ImageRef | None, box_env: dict[str, str], workspace: Workspace,
        base_path: str | None, log: Log,
    ) -> _Session:  # fmt: skip
        return _Session(workspace, self.step)

    def kind_for(self, boxless: Sequence[str], log: Log) -> str:  # the chooser, too
        return self.kind

    def runner(self, kind: str) -> _Runner:
        return self


class _World:
    """A git remote with ``STEPS_YML``, the fake store and the pool's services."""

    def __init__(self, tmp_path: Path, step: _Step, yml: str = STEPS_YML) -> None:
        remote = make_remote(tmp_path / "git")
        self.sha = remote.commit({"wercker.yml": yml})
        self.store = FakeStore(Reporter("wb", "http://bot.test"))
        settings = parse_settings(
            {
                "data_dir": str(tmp_path / "data"),
                "github": {"webhook_secret": "s" * 16, "status_context": "wb"},
                "runner": {"kind": "local-unsafe"},
                "repos": {"acme/app": {"clone_url": remote.url}},
            },
            {},
            base_dir=tmp_path,
        )
        forge = FakeForge(can_post=False)  # statuses stay in the (fake) outbox
        runner = _Runner(step)
        self.services = Services(
            settings=settings,
            store=self.store,  # type: ignore[arg-type]  # the pool uses only what attempts do
            pusher=build_pusher(settings, build_credentials(settings)),
            engine_pusher=build_engine_pusher(settings, build_credentials(settings)),
            reporter=self.store.listener,  # type: ignore[arg-type]
            forge=forge,
            status_delivery=StatusDelivery(self.store, forge),  # type: ignore[arg-type]
            dispatcher=EmbeddedDispatcher(self.store),  # type: ignore[arg-type]
            runners=lambda: runner,  # type: ignore[arg-type,return-value]
        )

    def running_pool(self, step: _Step) -> worker.WorkerPool:
        """A started pool with the pushed build's attempt running its first step."""
        pool = worker.WorkerPool(self.services, 1, recover_every=3600)
        pool.start()
        assert step.started.wait(30), "the attempt never reached its first step"
        return pool


def _steps(store: FakeStore, attempt_id: int) -> list[tuple[str, str, Result, str]]:
    return [
        (s.phase, s.name, s.state, s.message)
        for p in store.pipelines_of(attempt_id)
        for s in p.steps
    ]


def test_shutdown_lets_a_build_that_ends_within_the_grace_finish(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bot")
    step = _Step(seconds=1.0)
    world = _World(tmp_path, step)
    world.store.push(world.sha)
    pool = world.running_pool(step)
    started = time.monotonic()
    assert pool.shutdown(grace=10) == []
    took = time.monotonic() - started
    assert took < 5, took  # it waited for the build, not for the whole grace
    (attempt,) = world.store.attempts.values()
    assert attempt.state is Result.PASSED, attempt.description
    assert step.calls == ["sleep", "true", "echo notify"]  # all ran, after-step included
    assert world.store.final_statuses("acme/app", world.sha)["build"].startswith("success")
    assert any("finished within the grace period" in r.getMessage() for r in caplog.records)
    assert not any(t.is_alive() for t in pool.workers)


def test_shutdown_stops_a_build_longer_than_the_grace_and_queues_it_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bot")
    step = _Step(wait_for_abort=True)
    world = _World(tmp_path, step)
    store = world.store
    build_id = store.push(world.sha)
    pool = world.running_pool(step)
    (first,) = store.attempts.values()
    started = time.monotonic()
    assert pool.shutdown(grace=0.5) == [first.id]
    took = time.monotonic() - started
    assert 0.5 <= took < 4, took
    assert not any(t.is_alive() for t in pool.workers)

    assert first.state is Result.ERRORED and first.description == WORKER_RESTARTED
    # the long step was stopped; the rest, after-steps included, did not run
    assert step.calls == ["sleep"]
    assert _steps(store, first.id) == [
        ("main", "long", Result.ERRORED, WORKER_RESTARTED),
        ("main", "next", Result.SKIPPED, f"skipped: {WORKER_RESTARTED}"),
        ("after", "notify", Result.SKIPPED, f"skipped: {WORKER_RESTARTED}"),
    ]
    assert [p.state for p in store.pipelines_of(first.id)] == [Result.ERRORED]
    again = [a for a in store.attempts.values() if a.id != first.id]
    assert [(a.build.id, a.number, a.state, a.explicit) for a in again] == [
        (build_id, 2, Result.QUEUED, False)
    ]
    # attempt 1's contexts were resolved, then set pending for attempt 2
    rows = [(r.state, r.description) for r in store.outbox if r.context == "wb/build"]
    assert rows[-2:] == [("error", WORKER_RESTARTED), ("pending", "Queued (attempt 2)")]
    messages = [r.getMessage() for r in caplog.records]
    assert any("still running after 0.5 s: stopping it" in m for m in messages), messages
    assert any("stopped and re-queued attempt 1 → 2" in m for m in messages), messages
    assert "queued again as attempt 2" in store.log_text(first.id)

    # the next process runs attempt 2 to its end
    step.wait_for_abort, step.started = False, threading.Event()
    pool = world.running_pool(step)
    deadline = time.monotonic() + 30
    while again[0].state is not Result.PASSED and time.monotonic() < deadline:
        time.sleep(0.05)
    pool.shutdown(grace=5)
    assert again[0].state is Result.PASSED, again[0].description
    assert store.final_statuses("acme/app", world.sha)["build"].startswith("success")


def test_a_step_that_ends_as_the_abort_comes_keeps_its_result(tmp_path: Path) -> None:
    """A step is never cut once it has passed (a push that finished as the grace ran out);
    the steps after it do not run, and the attempt, cut short, is queued again."""
    step = _Step()
    world = _World(tmp_path, step)
    world.store.push(world.sha)
    claim = world.store.claim_next("w")
    assert claim is not None
    step.abort_on, step.abort = "sleep", Abort()
    assert execute(claim, world.services, step.abort) is Result.ERRORED
    assert _steps(world.store, claim.attempt_id) == [
        ("main", "long", Result.PASSED, ""),
        ("main", "next", Result.SKIPPED, "skipped: canceled"),
        ("after", "notify", Result.SKIPPED, "skipped: canceled"),
    ]
    assert step.calls == ["sleep"]
    assert [a.number for a in world.store.attempts.values()] == [1, 2]


def test_an_attempt_with_nothing_left_when_the_abort_comes_is_over(tmp_path: Path) -> None:
    """The abort came during the last after-step, which ended well: nothing was cut, the
    attempt keeps its result and is not run again."""
    step = _Step()
    world = _World(tmp_path, step)
    world.store.push(world.sha)
    claim = world.store.claim_next("w")
    assert claim is not None
    step.abort_on, step.abort = "echo notify", Abort()
    assert execute(claim, world.services, step.abort) is Result.PASSED
    assert step.calls == ["sleep", "true", "echo notify"]
    assert [a.state for a in world.store.attempts.values()] == [Result.PASSED]


# -- a reaped worker stops its attempt (issue 11, review item 1) ------------------------------
# A real local runner runs a real step process; the fake store's ``lose`` ends the attempt as
# a reaper on another host would, while the step sleeps.


def _pid_alive(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie waiting for its reaper is dead)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _until(what: Callable[[], object], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not what():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


def test_a_reaped_attempt_kills_its_running_step_and_skips_the_rest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(buildlog, "HEARTBEAT_SECONDS", 0.2)  # the log writer's beat meets it
    marks = tmp_path / "marks"
    marks.mkdir()
    yml = (
        "build:\n  steps:\n"
        "    - script:\n        name: long\n"
        f"        code: sleep 60 & echo $! > {marks}/pid; wait\n"
        f"    - script:\n        name: next\n        code: touch {marks}/next\n"
        "  after-steps:\n"
        f"    - script:\n        name: notify\n        code: touch {marks}/after\n"
    )
    world = _World(tmp_path, _Step(), yml)
    settings = world.services.settings
    world.services = dataclasses.replace(
        world.services,  # the real local runner: a real step process, killed on abort
        runners=functools.partial(build_runners, settings, build_credentials(settings)),
    )
    world.store.push(world.sha)
    pool = worker.WorkerPool(world.services, 1, recover_every=3600)
    pool.start()
    try:
        assert _until(lambda: (marks / "pid").is_file() and (marks / "pid").read_text(), 30)
        step_pid = int((marks / "pid").read_text())
        assert _pid_alive(step_pid)
        (attempt,) = world.store.attempts.values()
        written = len(world.store.outbox)
        world.store.lose(attempt.id)  # reaped elsewhere while this worker was away

        assert _until(lambda: not _pid_alive(step_pid), 10), "the reaped step still runs"
        assert _until(lambda: not pool._active, 10), "the reaped attempt did not stop"
    finally:
        pool.shutdown(grace=1)
    assert not (marks / "next").exists() and not (marks / "after").exists()
    assert (attempt.state, attempt.description) == (Result.ERRORED, WORKER_HOST_LOST)
    assert len(world.store.outbox) == written  # the stopped attempt wrote no status
    assert [a.id for a in world.store.attempts.values()] == [attempt.id]  # nor a requeue
    # Its step records stay as the (fake) reaper left them: nothing skipped nor ended.
    assert _steps(world.store, attempt.id) == [("main", "long", Result.RUNNING, "")]


# -- the log archive runs beside the handlers (issue 11, review item 3) -----------------------
# A real SQLite store holds the finished log; the build itself is replaced by one that writes
# its log and ends (the archive's timing is under test, not the build).


@pytest.fixture
def sql_store(tmp_path: Path) -> Iterator[SqlStore]:
    store = open_store(tmp_path / "db.sqlite3")
    yield store
    store.close()


def _held_until(release: threading.Event) -> Callable[[], None]:
    """A ``during_put`` that holds each upload until ``release`` (20 s at most)."""

    def hold() -> None:
        release.wait(20)

    return hold


def _archiving_pool(
    tmp_path: Path, store: SqlStore, archive: FakeLogArchive, monkeypatch: pytest.MonkeyPatch
) -> tuple[worker.WorkerPool, Claim]:
    """A pool over ``store`` and ``archive`` whose builds log a line and pass, and a claim."""

    def build(claim: Claim, services: Services, abort: Abort | None = None) -> Result:
        services.store.append_log(claim.attempt_id, "built\n")
        services.store.finish_attempt(claim.attempt_id, Result.PASSED, "ok")
        return Result.PASSED

    monkeypatch.setattr(worker, "execute", build)
    services = dataclasses.replace(
        _World(tmp_path, _Step()).services, store=store, log_archive=archive
    )
    store.record_push(new_push())
    claim = store.claim_next("w")
    assert claim is not None
    return worker.WorkerPool(services, 1, recover_every=3600), claim


def test_a_slow_archive_does_not_hold_the_handler(
    tmp_path: Path, sql_store: SqlStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    release = threading.Event()
    archive = FakeLogArchive(during_put=_held_until(release))
    pool, claim = _archiving_pool(tmp_path, sql_store, archive, monkeypatch)
    pool.archiver.start()
    try:
        started = time.monotonic()
        pool._execute(claim, StoreFence(sql_store, claim.attempt_id, "w"))
        took = time.monotonic() - started
        assert took < 10, f"the handler waited {took:.1f} s for the archive"
        assert sql_store.attempt_state(claim.build.id, 1) == Result.PASSED
        assert archive.puts == 0  # the upload is under way, held
        release.set()
        assert _until(lambda: archive.puts == 1, 10), "the archive thread never copied the log"
        assert archive.text(archive.key_for(AttemptRef.from_claim(claim))) == "built\n"
    finally:
        release.set()
        pool.stop()


def test_a_full_archive_backlog_skips_and_shutdown_does_not_wait_for_it(
    tmp_path: Path, sql_store: SqlStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    release = threading.Event()
    archive = FakeLogArchive(during_put=_held_until(release))
    pool, claim = _archiving_pool(tmp_path, sql_store, archive, monkeypatch)
    worker.execute(claim, pool.services)
    ref = AttemptRef.from_claim(claim)
    archiver = worker._Archiver(pool.services, backlog=1)
    assert archiver.offer(ref)  # waits: the thread has not started
    assert not archiver.offer(ref)  # over the backlog: skipped, for the sweep
    archiver.start()
    assert _until(lambda: archiver._queue.empty(), 5)  # the thread took it: uploading
    assert archiver.offer(ref)
    started = time.monotonic()
    archiver.abandon()  # one upload under way (held), one waiting: neither is waited for
    assert time.monotonic() - started < 1
    release.set()
    archiver.thread.join(10)
    assert not archiver.thread.is_alive()
    assert archive.puts == 1  # the one under way; the dropped one was never tried
