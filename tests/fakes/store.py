"""``FakeStore``: an in-memory store for millisecond unit tests of what an attempt decides
(``bot.build.Attempt``). It implements the Protocols an attempt is typed against
(``bot.store.base.QueueStore``, ``AttemptRecords`` and the ``OutboxWriter`` the reporter
writes to), keeps to their docstrings, and reports its facts to its ``StatusListener`` (the
real ``bot.reporter.Reporter``) as the SQL store does inside its transaction.

Set up builds with ``push(...)`` (a queued attempt), ``claim_next`` one, and mark earlier
builds passed with ``built(...)``. ``fail_log_writes`` makes ``append_log`` raise
``StoreUnavailable`` (a full disk) until it is set back to ``False``. Records are plain
dataclasses to assert on: ``attempts``, ``pipelines``, ``steps``, ``images``, ``log_text``,
``outbox``, ``final_statuses``.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from bot.errors import StoreUnavailable
from bot.models import WORKER_HOST_LOST, Result
from bot.store.base import (
    HEARTBEAT_STALE_SECONDS,
    AttemptRecords,
    OutboxWriter,
    QueueStore,
    StatusListener,
)
from bot.store.facts import Stored, Superseded
from bot.store.restarts import requeued
from bot.store.rows import BuildRow, Claim, QueuedBuild, StatusRow

PENDING = "pending"


@dataclass
class AttemptRecord:
    id: int
    number: int
    build: BuildRow
    explicit: bool
    state: Result = Result.QUEUED
    description: str = ""
    runner: str = ""
    heartbeat: float = 0.0
    worker: str = ""
    finished_at: float | None = None


@dataclass
class PipelineRecord:
    id: int
    attempt_id: int
    position: int
    name: str
    state: Result
    description: str = ""
    steps: list[StepRecord] = field(default_factory=list)


@dataclass
class StepRecord:
    id: int
    pipeline_id: int
    position: int
    phase: str
    step_id: str
    name: str
    state: Result = Result.RUNNING
    exit_code: int | None = None
    message: str = ""


@dataclass
class ImageRecord:
    attempt_id: int
    pipeline: str
    registry: str
    repository: str
    tags: tuple[str, ...]
    digest: str


class FakeStore:
    """``QueueStore`` + ``AttemptRecords`` + ``OutboxWriter`` in memory; thread-safe (the
    attempt's log writer calls it from its own thread)."""

    def __init__(self, listener: StatusListener) -> None:
        self.listener = listener
        self._lock = threading.RLock()
        self._ids = itertools.count(1)
        self.attempts: dict[int, AttemptRecord] = {}
        self.pipelines: dict[int, PipelineRecord] = {}
        self.steps: dict[int, StepRecord] = {}
        self.images: list[ImageRecord] = []
        self.logs: dict[int, list[str]] = {}
        self.outbox: list[StatusRow] = []
        self.fail_log_writes = False

    # -- setting up ---------------------------------------------------------------------------

    def push(
        self,
        sha: str,
        *,
        repo: str = "acme/app",
        branch: str = "main",
        pipelines: Sequence[str] = ("build",),
        explicit: bool = False,
    ) -> int:
        """Queues a build of ``sha`` and tells the listener (its contexts pending, as intake
        leaves them); returns its build id."""
        with self._lock:
            build_id = next(self._ids)
            build = BuildRow(
                id=build_id, repo=repo, ref=f"refs/heads/{branch}", branch=branch, git_tag="",
                sha=sha, before_sha="0" * 40, message="m", pusher="p",
                html_url=f"https://github.com/{repo}", pipelines=tuple(pipelines),
                created_at=time.time(),
            )  # fmt: skip
            attempt_id = next(self._ids)
            self.attempts[attempt_id] = AttemptRecord(attempt_id, 1, build, explicit)
            self.listener.stored(self, Stored(build_id, 1, repo, sha, tuple(pipelines)))
            return build_id

    def built(self, build_id: int) -> None:
        """Marks the (queued) attempt of ``build_id`` passed, as if it ran before."""
        with self._lock:
            for attempt in self.attempts.values():
                if attempt.build.id == build_id:
                    attempt.state = Result.PASSED
                    attempt.finished_at = time.time()

    def attempt_of(self, build_id: int) -> AttemptRecord:
        return next(a for a in self.attempts.values() if a.build.id == build_id)

    # -- reading back -------------------------------------------------------------------------

    def log_text(self, attempt_id: int) -> str:
        with self._lock:
            return "".join(self.logs.get(attempt_id, []))

    def final_statuses(self, repo: str, sha: str) -> dict[str, str]:
        """``{pipeline: "state: description"}``: the newest row of each context."""
        return {
            row.context.split("/", 1)[1]: f"{row.state}: {row.description}"
            for row in self.latest(repo, sha)
        }

    def pipelines_of(self, attempt_id: int) -> list[PipelineRecord]:
        return sorted(
            (p for p in self.pipelines.values() if p.attempt_id == attempt_id),
            key=lambda p: p.position,
        )

    # -- QueueStore -----------------------------------------------------------------------

    def claim_next(self, worker: str) -> Claim | None:
        with self._lock:
            busy = {
                (a.build.repo, a.build.branch)
                for a in self.attempts.values()
                if a.state is Result.RUNNING
            }
            for attempt in sorted(self.attempts.values(), key=lambda a: a.id):
                key = (attempt.build.repo, attempt.build.branch)
                if attempt.state is Result.QUEUED and key not in busy:
                    attempt.state = Result.RUNNING
                    attempt.heartbeat = time.time()
                    attempt.worker = worker
                    return Claim(attempt.id, attempt.number, attempt.explicit, attempt.build)
            return None

    def heartbeat(self, attempt_id: int) -> None:
        with self._lock:
            self.attempts[attempt_id].heartbeat = time.time()

    def recover_dead(self, max_age: float = HEARTBEAT_STALE_SECONDS) -> list[int]:
        # Every attempt of the fake lives in this process: none is ever dead.
        return []

    def running_attempt_ids(self) -> list[int]:
        with self._lock:
            return [a.id for a in self.attempts.values() if a.state is Result.RUNNING]

    def queued_on_branch(self, repo: str, branch: str, except_build: int) -> list[QueuedBuild]:
        with self._lock:
            return [
                QueuedBuild(a.id, a.build.id, a.build.sha, a.explicit)
                for a in sorted(self.attempts.values(), key=lambda a: a.id)
                if a.state is Result.QUEUED
                and (a.build.repo, a.build.branch) == (repo, branch)
                and a.build.id != except_build
            ]

    def supersede(self, repo: str, queued: Sequence[QueuedBuild], by_sha: str) -> list[int]:
        with self._lock:
            facts: list[Superseded] = []
            for q in queued:
                attempt = self.attempts.get(q.attempt_id)
                if attempt is None or attempt.state is not Result.QUEUED or attempt.explicit:
                    continue
                attempt.state = Result.CANCELED
                attempt.description = f"Superseded by {by_sha[:7]}"
                facts.append(Superseded(attempt.id, q.build_id, repo, q.sha, by_sha))
            if facts:
                self.listener.builds_superseded(self, facts)
            return [f.attempt_id for f in facts]

    def newest_built_sha(self, repo: str, branch: str, before_build: int) -> str | None:
        with self._lock:
            passed = [
                a
                for a in self.attempts.values()
                if a.state is Result.PASSED
                and (a.build.repo, a.build.branch) == (repo, branch)
                and a.build.id < before_build
            ]
            passed.sort(key=lambda a: a.finished_at or 0.0)
            return passed[-1].build.sha if passed else None

    def restart_attempt(
        self, attempt_id: int, description: str, worker: str | None = None
    ) -> int | None:
        with self._lock:
            stopped = self.attempts.get(attempt_id)
            if stopped is None or stopped.state is not Result.RUNNING:
                return None
            if worker is not None and stopped.worker != worker:
                return None
            self.finish_attempt(attempt_id, Result.ERRORED, description)
            self.error_open_pipelines(attempt_id, description)
            build = stopped.build
            number = 1 + max(a.number for a in self.attempts.values() if a.build.id == build.id)
            later = [
                a
                for a in sorted(self.attempts.values(), key=lambda a: a.id)
                if a.state is Result.QUEUED
                and (a.build.repo, a.build.branch) == (build.repo, build.branch)
                and a.id > attempt_id
            ]
            new_id = next(self._ids)
            self.attempts[new_id] = AttemptRecord(
                new_id, number, build, stopped.explicit, description=requeued(stopped.number)
            )
            for moved in later:  # behind the new attempt: arrival order, as the SQL store
                del self.attempts[moved.id]
                moved.id = next(self._ids)
                self.attempts[moved.id] = moved
            fact = Stored(build.id, number, build.repo, build.sha, tuple(build.pipelines))
            self.listener.stored(self, fact)
            return number

    # -- fencing (``DrainStore``'s fenced writes, for ``bot.dispatch.fence``) ----------------

    def lose(self, attempt_id: int) -> None:
        """Ends a running attempt as a reaper would (``WORKER_HOST_LOST``): its worker is
        fenced out from then on."""
        with self._lock:
            self.finish_attempt(attempt_id, Result.ERRORED, WORKER_HOST_LOST)

    def _owned(self, attempt_id: int, worker: str) -> bool:
        attempt = self.attempts.get(attempt_id)
        return attempt is not None and attempt.state is Result.RUNNING and attempt.worker == worker

    def fence(self, attempt_id: int, worker: str) -> bool:
        with self._lock:
            if not self._owned(attempt_id, worker):
                return False
            self.attempts[attempt_id].heartbeat = time.time()
            return True

    def add_fenced(self, attempt_id: int, worker: str, rows: Sequence[StatusRow]) -> bool:
        with self._lock:
            if not self._owned(attempt_id, worker):
                return False
            self.add(rows)
            return True

    def finish_attempt_fenced(
        self, attempt_id: int, worker: str, state: Result, description: str
    ) -> bool:
        with self._lock:
            if not self._owned(attempt_id, worker):
                return False
            self.finish_attempt(attempt_id, state, description)
            return True

    # -- AttemptRecords -------------------------------------------------------------------

    def finish_attempt(self, attempt_id: int, state: Result, description: str) -> None:
        with self._lock:
            attempt = self.attempts[attempt_id]
            attempt.state, attempt.description = state, description
            attempt.finished_at = time.time()

    def set_attempt_runner(self, attempt_id: int, runner: str) -> None:
        with self._lock:
            self.attempts[attempt_id].runner = runner

    def start_pipeline(self, attempt_id: int, position: int, name: str) -> int:
        with self._lock:
            pid = next(self._ids)
            self.pipelines[pid] = PipelineRecord(pid, attempt_id, position, name, Result.RUNNING)
            return pid

    def add_pipeline(
        self, attempt_id: int, position: int, name: str, state: Result, desc: str
    ) -> None:
        with self._lock:
            pid = next(self._ids)
            self.pipelines[pid] = PipelineRecord(pid, attempt_id, position, name, state, desc)

    def finish_pipeline(self, pipeline_id: int, state: Result, description: str) -> None:
        with self._lock:
            pipeline = self.pipelines[pipeline_id]
            pipeline.state, pipeline.description = state, description

    def error_open_pipelines(self, attempt_id: int, description: str) -> None:
        with self._lock:
            for pipeline in self.pipelines.values():
                if pipeline.attempt_id != attempt_id:
                    continue
                if pipeline.state in (Result.QUEUED, Result.RUNNING):
                    pipeline.state, pipeline.description = Result.ERRORED, description
                for step in pipeline.steps:
                    if step.state is Result.RUNNING:
                        step.state, step.message = Result.ERRORED, description

    def start_step(
        self, pipeline_id: int, position: int, phase: str, step_id: str, name: str
    ) -> int:
        with self._lock:
            sid = next(self._ids)
            step = StepRecord(sid, pipeline_id, position, phase, step_id, name)
            self.steps[sid] = step
            self.pipelines[pipeline_id].steps.append(step)
            return sid

    def finish_step(
        self, step_row: int, state: Result, exit_code: int | None, message: str
    ) -> None:
        with self._lock:
            step = self.steps[step_row]
            step.state, step.exit_code, step.message = state, exit_code, message

    def add_image(
        self,
        attempt_id: int,
        pipeline: str,
        registry: str,
        repository: str,
        tags: Sequence[str],
        digest: str,
    ) -> None:
        with self._lock:
            self.images.append(
                ImageRecord(attempt_id, pipeline, registry, repository, tuple(tags), digest)
            )

    def append_log(self, attempt_id: int, text: str) -> None:
        with self._lock:
            if self.fail_log_writes:
                raise StoreUnavailable("database or disk is full")
            if text:
                self.logs.setdefault(attempt_id, []).append(text)
                self.attempts[attempt_id].heartbeat = time.time()

    # -- OutboxWriter ---------------------------------------------------------------------

    def add(self, rows: Sequence[StatusRow]) -> None:
        with self._lock:
            self.outbox.extend(rows)

    def latest(self, repo: str, sha: str) -> list[StatusRow]:
        with self._lock:
            newest: dict[str, StatusRow] = {}
            for row in self.outbox:
                if (row.repo, row.sha) == (repo, sha):
                    newest[row.context] = row
            return list(newest.values())


def _typed(store: FakeStore) -> tuple[QueueStore, AttemptRecords, OutboxWriter]:
    """mypy checks here that the fake keeps to the Protocols it stands in for."""
    return store, store, store
