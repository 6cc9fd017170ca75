"""The worker pool's claim loop and its graceful shutdown."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from bot import worker
from bot.build import execute
from bot.dispatch.embedded import EmbeddedDispatcher
from bot.images import ImageRef
from bot.logs import Log
from bot.models import WORKER_RESTARTED, Result
from bot.outbox import StatusDelivery
from bot.reporter import Reporter
from bot.runners.base import ABORTED, Abort, GuestPaths, ScriptResult, Timeouts, Workspace
from bot.services import Services
from bot.settings import parse_settings
from bot.wiring import build_credentials, build_engine_pusher, build_pusher
from tests.fakes.forge import FakeForge
from tests.fakes.store import FakeStore
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

    def __init__(self, tmp_path: Path, step: _Step) -> None:
        remote = make_remote(tmp_path / "git")
        self.sha = remote.commit({"wercker.yml": STEPS_YML})
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
