"""Graceful shutdown (issue 11 item 4), driven for real: a ``wercker-bot worker`` process
with a config, a git remote and the sandboxed local runner running real steps, on a real
store; SIGTERM as a platform sends it on every deploy.

Both ``worker`` and ``serve`` (whose embedded workers stop the same way), on both stores:
SQLite (the embedded dispatcher) and PostgreSQL (``drain(key)`` jobs on procrastinate, the
build kicked as intake kicks it; the reaper's periodic reconcile is set out of reach, so
only a kick can start a build):

- A build that ends within ``shutdown_grace_seconds`` finishes, and the process exits 0.
- A build longer than the grace is stopped: its step processes killed, the attempt
  ``errored`` ("Worker restarted") with its statuses resolved, attempt N+1 queued (its
  statuses pending again; on PostgreSQL a drain job waits for it, kicked by the stopped
  drain itself); the next worker process runs it to the end.

And the store's part (``restart_attempt``), on each dialect.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import text

from bot.dispatch import Dispatcher, dispatcher_for
from bot.dispatch.keys import key_for
from bot.models import WORKER_RESTARTED, Result
from bot.settings import load_settings
from bot.store.schema import attempts, pipelines, steps
from bot.store.sql import SqlStore
from tests.harness import builds
from tests.harness.gitrepo import make_remote
from tests.harness.registry import die_with_parent, free_port

KEY = key_for("acme/app", "main", "")
STORES = ["sqlite", "postgresql"]


def _yml(seconds: str) -> str:
    """A build whose first attempt sleeps ``seconds`` (later attempts do not)."""
    return (
        "build:\n  steps:\n    - script:\n        name: slow\n        code: |\n"
        '          case "$WERCKER_RUN_ID" in *-1) sleep ' + seconds + " ;; esac\n"
        "          echo slept\n"
        "    - script:\n        name: after the sleep\n        code: echo next step\n"
    )


@dataclass
class Worker:
    proc: subprocess.Popen[bytes]
    log_path: Path

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")


class Setup:
    """A git remote, a config (grace ``grace`` s) and the store the worker uses: SQLite in
    its data dir, or the PostgreSQL database ``pg_url``. The push is stored and kicked as
    intake would."""

    def __init__(self, tmp: Path, grace: float, seconds: str, pg_url: str | None) -> None:
        self.tmp = tmp
        remote = make_remote(tmp / "git")
        self.sha = remote.commit({"wercker.yml": _yml(seconds)})
        data = tmp / "data"
        # No periodic reconcile within a test: a build runs only if something kicked it.
        store = f'[store]\nurl = "{pg_url}"\nreap_every_seconds = 3600\n' if pg_url else ""
        self.config = tmp / "bot.toml"
        self.config.write_text(
            f'data_dir = "{data}"\nworkers = 1\nshutdown_grace_seconds = {grace}\n'
            f'{store}[github]\nwebhook_secret = "s"\nstatus_context = "wb"\n'
            '[runner]\nkind = "local"\n'
            f'[repos."acme/app"]\nclone_url = "{remote.url}"\n'
        )
        database = load_settings(str(self.config)).database
        self.postgres = database.is_postgres
        self.store = builds.open_store(database.url)
        self.dispatcher: Dispatcher = dispatcher_for(database, self.store)
        self.store.record_push(builds.new_push(sha=self.sha))
        self.dispatcher.kick(KEY)
        self.started: list[Worker] = []

    def start(self, command: str = "worker") -> Worker:
        """``wercker-bot worker``, or ``serve`` (web app and embedded workers)."""
        log_path = self.tmp / f"worker-{len(self.started) + 1}.log"
        port = ["--port", str(free_port())] if command == "serve" else []
        with log_path.open("wb") as out:
            proc = subprocess.Popen(
                [str(Path(sys.executable).with_name("wercker-bot")), command,
                 "--config", str(self.config), *port],
                stdout=out, stderr=subprocess.STDOUT, preexec_fn=die_with_parent,
            )  # fmt: skip
        self.started.append(Worker(proc, log_path))
        return self.started[-1]

    def attempt_rows(self) -> list[tuple[int, str, str, bool]]:
        with self.store.read() as conn:
            rows = conn.execute(attempts.select().order_by(attempts.c.number)).all()
        return [(r.number, r.state, r.description, bool(r.explicit)) for r in rows]

    def statuses(self) -> list[tuple[str, str]]:
        return [(r.state, r.description) for r in self.store.statuses_for("acme/app", self.sha)]

    def claimed_by(self, number: int) -> str:
        """The fence token (``host:pid:…``) the claim of attempt ``number`` wrote."""
        with self.store.read() as conn:
            row = conn.execute(attempts.select().where(attempts.c.number == number)).one()
        return str(row.worker)

    def drain_jobs(self) -> list[str]:
        """The statuses of the key's procrastinate drain jobs, oldest first (PostgreSQL)."""
        with self.store.read() as conn:
            rows = conn.execute(
                text("SELECT status FROM procrastinate_jobs WHERE lock = :key ORDER BY id"),
                {"key": KEY},
            ).all()
        return [str(r.status) for r in rows]


@pytest.fixture(params=STORES)
def setup_for(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Callable[[float, str], Setup]]:
    """Makes ``Setup``s on the parameter's store; stops what they started."""
    pg_url = str(request.getfixturevalue("pg_url")) if request.param == "postgresql" else None
    made: list[Setup] = []

    def make(grace: float, seconds: str) -> Setup:
        made.append(Setup(tmp_path, grace, seconds, pg_url))
        return made[-1]

    yield make
    for setup in made:
        for worker in setup.started:
            if worker.proc.poll() is None:
                worker.proc.kill()
                worker.proc.wait()
        setup.dispatcher.close()
        setup.store.close()


def eventually(check: Callable[[], bool], what: str, worker: Worker, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert worker.proc.poll() is None, f"the worker exited: {worker.output()[-3000:]}"
        assert time.monotonic() < deadline, f"not within {timeout} s: {what}\n{worker.output()}"
        time.sleep(0.1)


def pids_with(marker: str) -> list[int]:
    """Host pids of processes whose command line holds ``marker`` (but this test's own)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if marker.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def descendants(pid: int) -> set[int]:
    """Every live descendant of ``pid``, by the parent links in ``/proc``."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.parametrize("command", ["worker", "serve"])
def test_sigterm_lets_a_build_within_the_grace_finish(
    setup_for: Callable[[float, str], Setup], command: str
) -> None:
    marker = f"2.{secrets.randbelow(10**6):06d}"
    setup = setup_for(10, marker)
    worker = setup.start(command)
    eventually(lambda: bool(pids_with(f"sleep {marker}")), "the step sleeping", worker, 60)
    signalled = time.monotonic()
    worker.proc.send_signal(signal.SIGTERM)
    code = worker.proc.wait(timeout=15)
    took = time.monotonic() - signalled
    output = worker.output()
    assert code == 0, output
    assert 1.0 <= took < 10, (took, output)  # it waited for the build, within the grace
    assert [r[:2] for r in setup.attempt_rows()] == [(1, Result.PASSED)], setup.attempt_rows()
    assert "finished within the grace period" in output, output
    assert setup.statuses()[-1][0] == "success", setup.statuses()


@pytest.mark.parametrize("command", ["worker", "serve"])
def test_sigterm_stops_a_build_longer_than_the_grace_and_requeues_it(
    setup_for: Callable[[float, str], Setup], command: str
) -> None:
    marker = f"60.{secrets.randbelow(10**6):06d}"
    setup = setup_for(1, marker)
    worker = setup.start(command)
    eventually(lambda: bool(pids_with(f"sleep {marker}")), "the step sleeping", worker, 60)
    # Sleepers first, then the tree: one forked in between is in the tree, not missed.
    sleepers = set(pids_with(f"sleep {marker}"))
    tree = descendants(worker.proc.pid)
    assert tree and sleepers <= tree
    signalled = time.monotonic()
    worker.proc.send_signal(signal.SIGTERM)
    code = worker.proc.wait(timeout=20)
    took = time.monotonic() - signalled
    output = worker.output()
    assert code == 0, output
    assert took < 8, (took, output)  # the grace (1 s) and the stop, not the 60 s step
    assert [pid for pid in tree if alive(pid)] == [], "a step process outlived the worker"
    assert pids_with(f"sleep {marker}") == []

    assert setup.attempt_rows() == [
        (1, Result.ERRORED, WORKER_RESTARTED, False),
        (2, Result.QUEUED, "Queued again: attempt 1 was stopped by a worker restart", False),
    ]
    with setup.store.read() as conn:
        rows = conn.execute(steps.select().order_by(steps.c.position)).all()
        pipeline_states = [r.state for r in conn.execute(pipelines.select()).all()]
    assert [(r.name, r.state, r.message) for r in rows] == [
        ("slow", Result.ERRORED, WORKER_RESTARTED),
        ("after the sleep", Result.SKIPPED, f"skipped: {WORKER_RESTARTED}"),
    ]
    assert pipeline_states == [Result.ERRORED]
    # attempt 1's context went from running to error, then pending for attempt 2
    statuses = setup.statuses()
    assert statuses[-3:] == [
        ("pending", "Running"),
        ("error", WORKER_RESTARTED),
        ("pending", "Queued (attempt 2)"),
    ], statuses
    assert "still running after 1 s: stopping it" in output, output
    assert "stopped and re-queued attempt 1 → 2" in output, output
    if setup.postgres:
        # attempt 1's drain ended (succeeded: deleted) and kicked the key for attempt 2
        assert setup.drain_jobs() == ["todo"], setup.drain_jobs()

    # the next process runs attempt 2 to the end
    stopped = worker
    worker = setup.start()
    eventually(lambda: setup.attempt_rows()[-1][1] == Result.PASSED, "attempt 2 passed", worker, 90)
    assert f":{stopped.proc.pid}:" in setup.claimed_by(1), setup.claimed_by(1)
    assert f":{worker.proc.pid}:" in setup.claimed_by(2), setup.claimed_by(2)
    worker.proc.send_signal(signal.SIGTERM)
    assert worker.proc.wait(timeout=15) == 0, worker.output()
    assert setup.statuses()[-1][0] == "success", setup.statuses()


# -- the store's part, on each dialect ----------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlStore]:
    url = (
        f"sqlite:///{tmp_path / 'db.sqlite3'}"
        if request.param == "sqlite"
        else str(request.getfixturevalue("pg_url"))
    )
    store = builds.open_store(url)
    yield store
    store.close()


def test_a_restart_ends_the_attempt_and_queues_the_next_ahead_of_later_pushes(
    store: SqlStore,
) -> None:
    first = builds.new_push(sha="a" * 40, delivery_id="d-a")
    store.record_push(first)
    claim = store.claim_next("w")
    assert claim is not None
    pipeline = store.start_pipeline(claim.attempt_id, 0, "build")
    step = store.start_step(pipeline, 0, "main", "script", "slow")
    # a push of an unrelated history arrives meanwhile: arrival order is all there is
    store.record_push(builds.new_push(sha="b" * 40, delivery_id="d-b"))

    assert store.restart_attempt(claim.attempt_id, WORKER_RESTARTED) == 2
    with store.read() as conn:
        rows = conn.execute(attempts.select().order_by(attempts.c.id)).all()
        step_row = conn.execute(steps.select().where(steps.c.id == step)).one()
    assert [(r.build_id, r.number, r.state) for r in rows] == [
        (claim.build.id, 1, Result.ERRORED),
        (claim.build.id, 2, Result.QUEUED),
        (claim.build.id + 1, 1, Result.QUEUED),
    ]
    assert rows[0].description == WORKER_RESTARTED
    assert (step_row.state, step_row.message) == (Result.ERRORED, WORKER_RESTARTED)
    assert [(r.state, r.description) for r in store.latest("acme/app", "a" * 40)] == [
        ("pending", "Queued (attempt 2)")
    ]
    again = store.claim_next("w")
    assert again is not None
    assert (again.build.id, again.attempt_number, again.explicit) == (claim.build.id, 2, False)
    # not running any more: nothing changes
    store.finish_attempt(again.attempt_id, Result.PASSED, "ok")
    assert store.restart_attempt(again.attempt_id, WORKER_RESTARTED) is None
    assert store.restart_attempt(claim.attempt_id, WORKER_RESTARTED) is None
    assert len(store.running_attempt_ids()) == 0


def test_a_restarted_redelivery_stays_explicit(store: SqlStore) -> None:
    push = builds.new_push(sha="a" * 40, delivery_id="d-a")
    store.record_push(push)
    claim = store.claim_next("w")
    assert claim is not None
    store.finish_attempt(claim.attempt_id, Result.PASSED, "ok")
    store.record_push(push)  # the user's redelivery: attempt 2, explicit
    rerun = store.claim_next("w")
    assert rerun is not None and rerun.explicit
    assert store.restart_attempt(rerun.attempt_id, WORKER_RESTARTED) == 3
    third = store.claim_next("w")
    assert third is not None and (third.attempt_number, third.explicit) == (3, True)
