"""The store: builds, attempts, pipelines, steps, images, logs, deliveries and the status
outbox. It doubles as the queue (``claim_next``).

SQLite in WAL mode under ``data_dir``. Every write transaction starts with
``BEGIN IMMEDIATE``, so a claim is atomic across threads *and* processes (``serve`` and
``worker`` may share one ``data_dir``).
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import Connection, Engine, Table, and_, create_engine, event, func, select, update
from sqlalchemy.engine import Row
from sqlalchemy.exc import DBAPIError, OperationalError

from bot.errors import StoreUnavailable
from bot.models import Result, short_sha
from bot.procs import process_alive
from bot.procs import worker_name as worker_name  # its old home; see bot.procs
from bot.store.migrate import create_if_empty
from bot.store.schema import (
    attempts,
    builds,
    deliveries,
    images,
    logs,
    outbox,
    pipelines,
    push_ancestors,
    steps,
)

HEARTBEAT_STALE_SECONDS = 120.0
ZERO_SHA = "0" * 40
_SHA = re.compile(r"^[0-9a-f]{40}$")

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class NewPush:
    """What the intake stores for a push. ``pipelines`` are the configured pipelines that
    will be tried; ``status_context`` is passed on, uninterpreted, in the ``Stored`` fact."""

    hook_id: str
    delivery_id: str
    repo: str
    ref: str
    branch: str
    git_tag: str
    sha: str
    before_sha: str
    message: str
    pusher: str
    html_url: str
    pipelines: Sequence[str]
    status_context: str
    commits: Sequence[str] = ()
    """The ids of the payload's ``commits``: all reachable from ``sha``."""
    forced: bool = False
    """A force push: ``before`` is then not an ancestor of ``sha``."""

    @property
    def proven_ancestors(self) -> set[str]:
        """Commits this payload proves to be strict ancestors of ``sha`` (no clone needed):
        its ``before`` unless the push was forced or created the branch, and its
        ``commits``. Only full 40-hex shas count."""
        found = set(self.commits)
        if not self.forced:
            found.add(self.before_sha)
        return {s for s in found if _SHA.match(s) and s != ZERO_SHA and s != self.sha}


@dataclass(frozen=True)
class StatusRow:
    """One commit status in the outbox, as the reporter decided it."""

    repo: str
    sha: str
    context: str
    state: str
    description: str
    target_url: str


@dataclass(frozen=True)
class Stored:
    """Fact: intake stored attempt ``attempt`` of build ``build_id``; queued, or stored
    canceled when an earlier-stored push proved it older (``superseded_by``)."""

    build_id: int
    attempt: int
    repo: str
    sha: str
    pipelines: tuple[str, ...]
    status_context: str
    target_url: str
    superseded_by: str | None = None


@dataclass(frozen=True)
class Superseded:
    """Fact: the queued attempt ``attempt_id`` of build ``build_id`` was canceled for the
    descendant ``by_sha``."""

    attempt_id: int
    build_id: int
    repo: str
    sha: str
    by_sha: str


@dataclass(frozen=True)
class Recovered:
    """Fact: the attempt ``attempt_id``, left running by a dead process, was finished."""

    attempt_id: int
    build_id: int
    repo: str
    sha: str


class OutboxWriter(Protocol):
    def add(self, rows: Sequence[StatusRow]) -> None: ...

    def latest(self, repo: str, sha: str) -> list[StatusRow]: ...


class StatusListener(Protocol):
    """Told the store's facts inside the transaction that makes them (``bot.reporter``):
    whatever it adds to the outbox is kept, or dropped, with the fact."""

    def stored(self, outbox: OutboxWriter, fact: Stored) -> None: ...

    def builds_superseded(self, outbox: OutboxWriter, facts: Sequence[Superseded]) -> None: ...

    def attempts_recovered(self, outbox: OutboxWriter, facts: Sequence[Recovered]) -> None: ...


@dataclass(frozen=True)
class Intake:
    """The intake's answer: a stored build (``build_id``, ``attempt``) or ``ignored``."""

    build_id: int | None
    attempt: int | None
    ignored: str | None = None


@dataclass(frozen=True)
class QueuedBuild:
    """A queued attempt of a branch, as the worker sees it when ordering by ancestry."""

    attempt_id: int
    build_id: int
    sha: str
    explicit: bool


@dataclass(frozen=True)
class BuildRow:
    """One stored build (one push), as the worker runs it."""

    id: int
    repo: str
    ref: str
    branch: str
    git_tag: str
    sha: str
    before_sha: str
    message: str
    pusher: str
    html_url: str
    pipelines: tuple[str, ...]
    """The pipelines planned at intake: their contexts went pending then."""
    created_at: float

    @classmethod
    def from_row(cls, row: Any) -> BuildRow:
        values = dict(row._mapping)
        values["pipelines"] = tuple(json.loads(str(values["pipelines"] or "[]")))
        return cls(**values)


@dataclass(frozen=True)
class Claim:
    """An attempt this worker now owns (marked running), with its build."""

    attempt_id: int
    attempt_number: int
    explicit: bool
    build: BuildRow


LOG_ROW_CHARS = 16 * 1024
"""A log row holds at most this many characters (≤ 64 KB of UTF-8): reads stop at rows."""
LOG_PAGE_BYTES = 256 * 1024
"""The default size of one page of log text served or read at once."""
READ_ROW_CHARS = 64 * 1024
"""Rows stored before rows were bounded may be huge; a read takes at most this much of one."""


@dataclass(frozen=True)
class LogPage:
    """One bounded page of a log: ``text``, the cursor after it, and whether more follows."""

    text: str
    next_id: int
    more: bool


@dataclass(frozen=True)
class LogTail:
    """The end of a log: ``text``, the newest row's id, and whether it is the whole log."""

    text: str
    last_id: int
    complete: bool


def _row_text(row: Any) -> str:
    text = str(row.text)
    if int(row.chars) > READ_ROW_CHARS:
        text += (
            f"\n[wercker-bot] (this log row of {row.chars} characters, stored before logs "
            f"were bounded, is cut here at {READ_ROW_CHARS})\n"
        )
    return text


def sqlite_reason(err: DBAPIError) -> str:
    """SQLite's own message, one line, without SQLAlchemy's SQL text and parameters (which
    may hold a whole batch of log text)."""
    text = str(err.orig).strip()
    return text.splitlines()[0] if text else type(err).__name__


def _rollback(conn: Connection) -> None:
    """Rolls back what is still open, and never hides the error that got us here.

    SQLite ends the transaction itself on some errors (SQLITE_FULL, SQLITE_IOERR); a
    ROLLBACK then fails with "cannot rollback - no transaction is active", and raising that
    would replace the real reason (a full disk showed up as a wall of "cannot rollback")."""
    try:
        dbapi = conn.connection.dbapi_connection
        if dbapi is not None and not getattr(dbapi, "in_transaction", True):
            return
        conn.exec_driver_sql("ROLLBACK")
    except Exception:
        # The connection is unusable; SQLAlchemy's pool resets or discards it on return.
        logger.debug("rollback failed after a failed transaction", exc_info=True)


class Store:
    """All persistence. Methods are safe to call from several threads and processes.

    ``listener`` is told the facts that change what GitHub sees (a build stored, builds
    superseded, attempts recovered) inside the transaction that makes them; the store
    itself decides nothing about statuses. It defaults to ``bot.reporter.Reporter``."""

    def __init__(self, db_path: Path, listener: StatusListener | None = None) -> None:
        if listener is None:
            from bot.reporter import Reporter  # the reporter imports this module's facts

            listener = Reporter()
        self.listener: StatusListener = listener
        db_path.parent.mkdir(parents=True, exist_ok=True)
        self._write_lock = threading.Lock()
        self.engine: Engine = create_engine(
            f"sqlite:///{db_path}",
            connect_args={"check_same_thread": False, "timeout": 60},
        )

        @event.listens_for(self.engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            # Autocommit at the driver: reads take no lock, and ``tx()`` issues BEGIN
            # IMMEDIATE itself (pysqlite's implicit BEGIN is DEFERRED, which would let two
            # processes read the same queued row before either writes).
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            # FULL: a build acknowledged with 202 survives a power cut (GitHub never retries).
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute("PRAGMA busy_timeout=60000")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        # A new database is created at the head revision; an existing one is left as it is
        # (``migrate.check_schema`` tells the composition root whether it can be used).
        self.created = create_if_empty(self)

    @contextmanager
    def tx(self) -> Iterator[Connection]:
        """One write transaction (BEGIN IMMEDIATE … COMMIT): all of it is kept, or none.

        Raises ``StoreUnavailable`` (SQLite's own reason, e.g. "database or disk is full")
        when the database cannot be written — full disk, I/O error, locked past the busy
        timeout; nothing of the transaction is kept then. Other errors propagate as they are.
        """
        # Threads of one process queue on a lock instead of on SQLite's busy handler, whose
        # sleep-and-retry polling turns a burst of webhooks into multi-second tail latency.
        # Other processes still wait on the database lock (busy_timeout).
        with self._write_lock:
            try:
                with self.engine.connect() as conn:
                    conn.exec_driver_sql("BEGIN IMMEDIATE")
                    try:
                        yield conn
                        conn.exec_driver_sql("COMMIT")
                    except BaseException:
                        _rollback(conn)
                        raise
            except OperationalError as err:
                raise StoreUnavailable(sqlite_reason(err)) from err

    def _insert(self, table: Table, **values: Any) -> int:
        """Inserts one row in its own transaction and returns its primary key."""
        with self.tx() as conn:
            result = conn.execute(table.insert().values(**values))
            return int(result.inserted_primary_key[0])  # type: ignore[index]

    # -- intake ----------------------------------------------------------------------------

    def record_push(self, push: NewPush, target_url: str) -> Intake:
        """Stores a push durably (before the webhook is answered) and queues its attempt.

        The same (hook id, delivery id) while its build is queued or running is ignored;
        after it finished it becomes attempt N+1 (a user's re-run, honoured even for an old
        commit). A build is superseded only by a descendant (behaviour §3), and intake uses
        only what payloads prove (``NewPush.proven_ancestors``; no clone, no network call):
        a new push cancels the queued builds of its branch whose commits it proves to be
        its ancestors ("Superseded by …"); a push that an earlier-stored push proves to be
        its ancestor is stored canceled, so an older commit never overwrites a newer tag.
        Everything else stays queued, in arrival order, for the worker to decide with git.
        """
        now = time.time()
        with self.tx() as conn:
            seen = conn.execute(
                select(deliveries.c.build_id).where(
                    deliveries.c.hook_id == push.hook_id,
                    deliveries.c.delivery_id == push.delivery_id,
                )
            ).first()
            if seen is not None:
                build_id = int(seen.build_id)
                last = conn.execute(
                    select(attempts)
                    .where(attempts.c.build_id == build_id)
                    .order_by(attempts.c.number.desc())
                ).first()
                assert last is not None
                if last.state in (Result.QUEUED, Result.RUNNING):
                    return Intake(build_id, int(last.number), "already in progress")
                number = int(last.number) + 1
                # A re-run is not a new push: it supersedes nothing queued behind it.
                conn.execute(
                    attempts.insert().values(
                        build_id=build_id,
                        number=number,
                        state=Result.QUEUED,
                        explicit=True,
                        created_at=now,
                        description="Redelivered: re-run",
                    )
                )
                build = conn.execute(select(builds).where(builds.c.id == build_id)).one()
                self.listener.stored(
                    _TxOutbox(conn, now),
                    Stored(
                        build_id,
                        number,
                        str(build.repo),
                        str(build.sha),
                        tuple(json.loads(build.pipelines)),
                        push.status_context,
                        target_url.format(id=build_id),
                    ),
                )
                return Intake(build_id, number)

            build_id = int(
                conn.execute(
                    builds.insert().values(
                        repo=push.repo,
                        ref=push.ref,
                        branch=push.branch,
                        git_tag=push.git_tag,
                        sha=push.sha,
                        before_sha=push.before_sha,
                        message=push.message,
                        pusher=push.pusher,
                        html_url=push.html_url,
                        pipelines=json.dumps(list(push.pipelines)),
                        created_at=now,
                    )
                ).inserted_primary_key[0]  # type: ignore[index]
            )
            conn.execute(
                deliveries.insert().values(
                    hook_id=push.hook_id,
                    delivery_id=push.delivery_id,
                    build_id=build_id,
                    received_at=now,
                )
            )
            stored = Stored(
                build_id,
                1,
                push.repo,
                push.sha,
                tuple(push.pipelines),
                push.status_context,
                target_url.format(id=build_id),
            )
            ancestors = push.proven_ancestors if push.branch else set()
            if ancestors:
                conn.execute(
                    push_ancestors.insert(),
                    [{"build_id": build_id, "sha": sha} for sha in sorted(ancestors)],
                )
            newer = self._newer_push(conn, push)
            if newer is not None:
                desc = f"Superseded by {short_sha(newer)}"
                conn.execute(
                    attempts.insert().values(
                        build_id=build_id,
                        number=1,
                        state=Result.CANCELED,
                        explicit=False,
                        created_at=now,
                        finished_at=now,
                        description=desc,
                    )
                )
                out = _TxOutbox(conn, now)
                self.listener.stored(out, replace(stored, superseded_by=newer))
                # What this push proves older than itself is older than ``newer`` too.
                self.listener.builds_superseded(
                    out, self._supersede_queued(conn, push, build_id, newer, now)
                )
                return Intake(build_id, 1)
            canceled = self._supersede_queued(conn, push, build_id, push.sha, now)
            self.listener.builds_superseded(_TxOutbox(conn, now), canceled)
            conn.execute(
                attempts.insert().values(
                    build_id=build_id,
                    number=1,
                    state=Result.QUEUED,
                    explicit=False,
                    created_at=now,
                    description="Queued",
                )
            )
            self.listener.stored(_TxOutbox(conn, now), stored)
            return Intake(build_id, 1)

    def _newer_push(self, conn: Connection, push: NewPush) -> str | None:
        """The sha of a stored push on the same branch whose payload proved ``push.sha`` to
        be its ancestor (its ``before`` or one of its ``commits``), if any: GitHub may
        deliver out of order, and an ancestor must never run after its descendant. The
        latest such push is named."""
        if not push.branch or not _SHA.match(push.sha) or push.sha == ZERO_SHA:
            return None
        row = conn.execute(
            select(builds.c.sha)
            .join(push_ancestors, push_ancestors.c.build_id == builds.c.id)
            .where(
                builds.c.repo == push.repo,
                builds.c.branch == push.branch,
                builds.c.sha != push.sha,
                push_ancestors.c.sha == push.sha,
            )
            .order_by(builds.c.id.desc())
        ).first()
        return str(row.sha) if row else None

    def _supersede_queued(
        self, conn: Connection, push: NewPush, keep_build: int, by_sha: str, now: float
    ) -> list[Superseded]:
        """Cancels the queued builds of ``push``'s branch whose commits the payload proves
        to be ancestors of ``push.sha`` ("Superseded by <by_sha>", ``by_sha`` being this push
        or a proven descendant of it). Anything else stays queued, for the worker to order
        with git (``Attempt.superseded_by``): a build is only superseded by a descendant,
        whatever order the deliveries arrive in. A user's redelivery is never superseded."""
        ancestors = push.proven_ancestors
        if not push.branch or not ancestors:
            return []
        return [
            fact
            for item in self._queued_builds(conn, push.repo, push.branch, keep_build)
            if item.sha in ancestors and not item.explicit
            for fact in self._cancel_queued(conn, push.repo, item, by_sha, now)
        ]

    def _queued_builds(
        self, conn: Connection, repo: str, branch: str, except_build: int
    ) -> list[QueuedBuild]:
        """The queued attempts of a branch (but ``except_build``'s), oldest first."""
        rows = conn.execute(
            select(
                attempts.c.id.label("attempt_id"),
                attempts.c.explicit,
                builds.c.id.label("build_id"),
                builds.c.sha,
            )
            .join(builds, builds.c.id == attempts.c.build_id)
            .where(
                builds.c.repo == repo,
                builds.c.branch == branch,
                attempts.c.state == Result.QUEUED,
                builds.c.id != except_build,
            )
            .order_by(attempts.c.id)
        ).all()
        return [
            QueuedBuild(int(r.attempt_id), int(r.build_id), str(r.sha), bool(r.explicit))
            for r in rows
        ]

    def _cancel_queued(
        self, conn: Connection, repo: str, item: QueuedBuild, by_sha: str, now: float
    ) -> list[Superseded]:
        """Cancels one attempt if it is still queued: the fact, or nothing when it had left
        the queue meanwhile."""
        done = conn.execute(
            update(attempts)
            .where(attempts.c.id == item.attempt_id, attempts.c.state == Result.QUEUED)
            .values(
                state=Result.CANCELED,
                finished_at=now,
                description=f"Superseded by {short_sha(by_sha)}",
            )
        )
        if not done.rowcount:
            return []
        return [Superseded(item.attempt_id, item.build_id, repo, item.sha, by_sha)]

    def queued_on_branch(self, repo: str, branch: str, except_build: int) -> list[QueuedBuild]:
        """The queued attempts of ``repo``'s ``branch`` other than ``except_build``'s, in
        arrival order: what the worker compares with git before running a build."""
        with self.engine.connect() as conn:
            return self._queued_builds(conn, repo, branch, except_build)

    def supersede(self, repo: str, queued: Sequence[QueuedBuild], by_sha: str) -> list[int]:
        """Cancels the given queued attempts, "Superseded by <by_sha>", resolving their
        pending statuses the same way; a user's redelivery and an attempt that has left the
        queue meanwhile are left alone. Returns the ids of the attempts canceled."""
        now = time.time()
        with self.tx() as conn:
            facts = [
                fact
                for item in queued
                if not item.explicit
                for fact in self._cancel_queued(conn, repo, item, by_sha, now)
            ]
            self.listener.builds_superseded(_TxOutbox(conn, now), facts)
        return [fact.attempt_id for fact in facts]

    # -- queue -----------------------------------------------------------------------------

    def claim_next(self, worker: str) -> Claim | None:
        """Atomically takes the oldest queued attempt whose branch has nothing running.

        The query itself skips busy branches (``NOT EXISTS`` a running attempt of the same
        repository and branch), so any number of queued builds behind a running one never
        hide another repository's build."""
        now = time.time()
        busy_attempt = attempts.alias("busy_attempt")
        busy_build = builds.alias("busy_build")
        branch_busy = (
            select(busy_attempt.c.id)
            .join(busy_build, busy_build.c.id == busy_attempt.c.build_id)
            .where(
                busy_attempt.c.state == Result.RUNNING,
                busy_build.c.repo == builds.c.repo,
                busy_build.c.branch == builds.c.branch,
            )
            .exists()
        )
        with self.tx() as conn:
            row = conn.execute(
                select(
                    attempts.c.id.label("attempt_id"),
                    attempts.c.number,
                    attempts.c.explicit,
                    builds.c.id.label("build_id"),
                )
                .join(builds, builds.c.id == attempts.c.build_id)
                .where(attempts.c.state == Result.QUEUED, ~branch_busy)
                .order_by(attempts.c.id)
                .limit(1)
            ).first()
            if row is None:
                return None
            conn.execute(
                update(attempts)
                .where(attempts.c.id == row.attempt_id)
                .values(
                    state=Result.RUNNING,
                    worker=worker,
                    started_at=now,
                    heartbeat_at=now,
                    description="Running",
                )
            )
            build = conn.execute(select(builds).where(builds.c.id == row.build_id)).one()
            return Claim(
                int(row.attempt_id), int(row.number), bool(row.explicit), BuildRow.from_row(build)
            )

    def newest_built_sha(self, repo: str, branch: str, before_build: int) -> str | None:
        """The sha of the latest build of this branch that arrived before ``before_build``
        and passed: what the branch's tags point at now."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(builds.c.sha)
                .join(attempts, attempts.c.build_id == builds.c.id)
                .where(
                    builds.c.repo == repo,
                    builds.c.branch == branch,
                    builds.c.id < before_build,
                    attempts.c.state == Result.PASSED,
                )
                .order_by(attempts.c.finished_at.desc())
            ).first()
        return str(row.sha) if row else None

    def running_attempt_ids(self) -> list[int]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(attempts.c.id).where(attempts.c.state == Result.RUNNING)
            ).all()
        return [int(r.id) for r in rows]

    def heartbeat(self, attempt_id: int) -> None:
        with self.tx() as conn:
            conn.execute(
                update(attempts).where(attempts.c.id == attempt_id).values(heartbeat_at=time.time())
            )

    def finish_attempt(self, attempt_id: int, state: Result, description: str) -> None:
        with self.tx() as conn:
            conn.execute(
                update(attempts)
                .where(attempts.c.id == attempt_id)
                .values(state=state, description=description, finished_at=time.time())
            )

    def set_attempt_runner(self, attempt_id: int, runner: str) -> None:
        with self.tx() as conn:
            conn.execute(update(attempts).where(attempts.c.id == attempt_id).values(runner=runner))

    def recover_dead(self, max_age: float = HEARTBEAT_STALE_SECONDS) -> list[int]:
        """Finishes attempts left ``running`` by a dead process as ``errored`` ("worker
        died") and resolves their pending statuses. A claimer is dead when its heartbeat
        is older than ``max_age`` (a live attempt beats every few seconds), or, on this
        host, when its pid is gone, a zombie, or this process under an earlier token
        (``process_alive``)."""
        now = time.time()
        recovered: list[Recovered] = []
        with self.tx() as conn:
            rows = conn.execute(
                select(attempts, builds.c.repo, builds.c.sha)
                .join(builds, builds.c.id == attempts.c.build_id)
                .where(attempts.c.state == Result.RUNNING)
            ).all()
            for row in rows:
                stale = (row.heartbeat_at or 0) < now - max_age
                dead = stale or process_alive(str(row.worker)) is False
                if not dead:
                    continue
                desc = "Worker died while running this build; redeliver the webhook to re-run"
                conn.execute(
                    update(attempts)
                    .where(attempts.c.id == row.id)
                    .values(state=Result.ERRORED, finished_at=now, description=desc)
                )
                self._error_open_rows(conn, int(row.id), "Worker died", now)
                recovered.append(
                    Recovered(int(row.id), int(row.build_id), str(row.repo), str(row.sha))
                )
            self.listener.attempts_recovered(_TxOutbox(conn, now), recovered)
        return [fact.attempt_id for fact in recovered]

    # -- pipelines, steps, images, logs ----------------------------------------------------

    def start_pipeline(self, attempt_id: int, position: int, name: str) -> int:
        return self._insert(
            pipelines,
            attempt_id=attempt_id,
            position=position,
            name=name,
            state=Result.RUNNING,
            started_at=time.time(),
        )

    def add_pipeline(
        self, attempt_id: int, position: int, name: str, state: Result, desc: str
    ) -> None:
        self._insert(
            pipelines,
            attempt_id=attempt_id,
            position=position,
            name=name,
            state=state,
            description=desc,
        )

    def error_open_pipelines(self, attempt_id: int, description: str) -> None:
        """Ends pipeline and step rows an aborted attempt left running."""
        with self.tx() as conn:
            self._error_open_rows(conn, attempt_id, description, time.time())

    def _error_open_rows(
        self, conn: Connection, attempt_id: int, description: str, now: float
    ) -> None:
        open_ids = [
            r.id
            for r in conn.execute(
                select(pipelines.c.id).where(
                    pipelines.c.attempt_id == attempt_id,
                    pipelines.c.state.in_([Result.RUNNING, Result.QUEUED]),
                )
            ).all()
        ]
        conn.execute(
            update(pipelines)
            .where(pipelines.c.id.in_(open_ids))
            .values(state=Result.ERRORED, description=description, finished_at=now)
        )
        conn.execute(
            update(steps)
            .where(
                steps.c.pipeline_id.in_(
                    select(pipelines.c.id).where(pipelines.c.attempt_id == attempt_id)
                ),
                steps.c.state == Result.RUNNING,
            )
            .values(state=Result.ERRORED, message=description, finished_at=now)
        )

    def finish_pipeline(self, pipeline_id: int, state: Result, description: str) -> None:
        with self.tx() as conn:
            conn.execute(
                update(pipelines)
                .where(pipelines.c.id == pipeline_id)
                .values(state=state, description=description, finished_at=time.time())
            )

    def start_step(
        self, pipeline_id: int, position: int, phase: str, step_id: str, name: str
    ) -> int:
        return self._insert(
            steps,
            pipeline_id=pipeline_id,
            position=position,
            phase=phase,
            step_id=step_id,
            name=name,
            state=Result.RUNNING,
            started_at=time.time(),
        )

    def finish_step(
        self, step_row: int, state: Result, exit_code: int | None, message: str
    ) -> None:
        with self.tx() as conn:
            conn.execute(
                update(steps)
                .where(steps.c.id == step_row)
                .values(state=state, exit_code=exit_code, message=message, finished_at=time.time())
            )

    def add_image(
        self,
        attempt_id: int,
        pipeline: str,
        registry: str,
        repository: str,
        tags: Sequence[str],
        digest: str,
    ) -> None:
        self._insert(
            images,
            attempt_id=attempt_id,
            pipeline=pipeline,
            registry=registry,
            repository=repository,
            tags=",".join(tags),
            digest=digest,
            created_at=time.time(),
        )

    def append_log(self, attempt_id: int, text: str) -> None:
        """Appends ``text`` (already masked) to the attempt's log and bumps its heartbeat,
        in one transaction. The text is stored in rows of at most ``LOG_ROW_CHARS``
        characters, so every read can stop at a row boundary and stay bounded. Raises
        ``StoreUnavailable`` when the store cannot write; nothing is stored then."""
        if not text:
            return
        now = time.time()
        rows = [
            {"attempt_id": attempt_id, "text": text[i : i + LOG_ROW_CHARS], "created_at": now}
            for i in range(0, len(text), LOG_ROW_CHARS)
        ]
        with self.tx() as conn:
            conn.execute(logs.insert(), rows)
            conn.execute(
                update(attempts).where(attempts.c.id == attempt_id).values(heartbeat_at=now)
            )

    def log_text(
        self, attempt_id: int, after_id: int = 0, max_bytes: int = LOG_PAGE_BYTES
    ) -> tuple[str, int]:
        """``(text, cursor)`` of one bounded page of the log after row ``after_id`` (see
        ``log_page``); never the whole log. Pass ``cursor`` back to read on."""
        page = self.log_page(attempt_id, after_id, max_bytes)
        return page.text, page.next_id

    def _log_rows(self, attempt_id: int, after_id: int, newest_first: bool) -> Any:
        text = func.substr(logs.c.text, 1, READ_ROW_CHARS).label("text")
        order = logs.c.id.desc() if newest_first else logs.c.id
        return (
            select(logs.c.id, text, func.length(logs.c.text).label("chars"))
            .where(logs.c.attempt_id == attempt_id, logs.c.id > after_id)
            .order_by(order)
        )

    def log_page(
        self, attempt_id: int, after_id: int = 0, max_bytes: int = LOG_PAGE_BYTES
    ) -> LogPage:
        """The log rows after row ``after_id``, oldest first, up to ``max_bytes`` of UTF-8
        (at least one row, so a reader always advances; a row is at most ``LOG_ROW_CHARS``
        characters). ``next_id`` is the cursor for the next page; ``more`` says whether
        rows were left for it. Rows are read one at a time, so memory stays bounded by the
        page whatever the log's size."""
        parts: list[str] = []
        used = 0
        last = after_id
        more = False
        with self.engine.connect() as conn:
            result = conn.execute(self._log_rows(attempt_id, after_id, newest_first=False))
            for row in result:
                piece = _row_text(row)
                size = len(piece.encode())
                if parts and used + size > max_bytes:
                    more = True
                    break
                parts.append(piece)
                used += size
                last = int(row.id)
            result.close()
        return LogPage("".join(parts), last, more)

    def log_tail(self, attempt_id: int, max_bytes: int = LOG_PAGE_BYTES) -> LogTail:
        """The last ``max_bytes`` (at most) of the log, for a page that shows where a build
        is. When the log is longer, the text starts at a line start inside the window and
        ``complete`` is false. ``last_id`` is the cursor of the newest row, for
        ``log_page`` (the API's ``?after=``) to read what comes next."""
        parts: list[str] = []
        used = 0
        last = 0
        complete = True
        with self.engine.connect() as conn:
            result = conn.execute(self._log_rows(attempt_id, 0, newest_first=True))
            for row in result:
                last = last or int(row.id)
                piece = _row_text(row)
                data = piece.encode()
                if used + len(data) > max_bytes:
                    complete = False
                    room = max_bytes - used
                    if room > 0:
                        cut = data[len(data) - room :].decode("utf-8", "ignore")
                        newline = cut.find("\n")
                        if 0 <= newline < len(cut) - 1:
                            cut = cut[newline + 1 :]  # show whole lines only
                        parts.append(cut)
                    break
                parts.append(piece)
                used += len(data)
            result.close()
        parts.reverse()
        return LogTail("".join(parts), last, complete)

    def iter_log(self, attempt_id: int, page_bytes: int = LOG_PAGE_BYTES) -> Iterator[str]:
        """The whole log as a sequence of pages of at most about ``page_bytes`` each, each
        read on its own (no read transaction stays open while a slow client downloads)."""
        after = 0
        while True:
            page = self.log_page(attempt_id, after, page_bytes)
            if page.text:
                yield page.text
            if not page.more:
                return
            after = page.next_id

    def log_attempt_id(self, build_id: int, number: int) -> int | None:
        """The id of attempt ``number`` of build ``build_id`` (whose log rows these are)."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(attempts.c.id).where(
                    attempts.c.build_id == build_id, attempts.c.number == number
                )
            ).first()
        return int(row.id) if row else None

    # -- status outbox ---------------------------------------------------------------------

    def add(self, rows: Sequence[StatusRow]) -> None:
        """Appends status rows to the outbox, in one transaction (the reporter's ``Outbox``)."""
        with self.tx() as conn:
            _TxOutbox(conn, time.time()).add(rows)

    def latest(self, repo: str, sha: str) -> list[StatusRow]:
        """The newest status row of each context of a commit."""
        with self.engine.connect() as conn:
            return _TxOutbox(conn, time.time()).latest(repo, sha)

    def enqueue_status(
        self, repo: str, sha: str, context: str, state: str, description: str, target_url: str
    ) -> None:
        self.add([StatusRow(repo, sha, context, state, description, target_url)])

    def claim_statuses(self, limit: int = 20, lease: float = 60.0) -> list[dict[str, Any]]:
        """Leases due outbox rows for delivery, at most one per (repo, sha, context) and
        oldest first, so GitHub sees each context's states in order (pending, then final).
        While GitHub is failing, a row that has already been tried and has a newer row
        behind it is marked ``superseded``: GitHub only shows the latest state per context,
        so a backlog after an outage collapses to what still matters."""
        now = time.time()
        with self.tx() as conn:
            rows = conn.execute(
                select(outbox).where(outbox.c.outcome == "queued").order_by(outbox.c.id)
            ).all()
            queues: dict[tuple[str, str, str], list[Row[Any]]] = {}
            for row in rows:
                queues.setdefault((row.repo, row.sha, row.context), []).append(row)
            due: list[Row[Any]] = []
            for queue in queues.values():
                while len(queue) > 1 and queue[0].tries > 0:
                    conn.execute(
                        update(outbox)
                        .where(outbox.c.id == queue[0].id)
                        .values(outcome="superseded")
                    )
                    queue.pop(0)
                head = queue[0]
                if head.next_try_at <= now and head.locked_until <= now:
                    due.append(head)
            due = sorted(due, key=lambda r: r.id)[:limit]
            for row in due:
                conn.execute(
                    update(outbox).where(outbox.c.id == row.id).values(locked_until=now + lease)
                )
            return [dict(r._mapping) for r in due]

    def status_delivered(self, row_id: int) -> None:
        with self.tx() as conn:
            conn.execute(
                update(outbox)
                .where(outbox.c.id == row_id)
                .values(outcome="delivered", delivered_at=time.time(), tries=outbox.c.tries + 1)
            )

    def status_retry(self, row_id: int, next_try_at: float, error: str) -> None:
        with self.tx() as conn:
            conn.execute(
                update(outbox)
                .where(outbox.c.id == row_id, outbox.c.outcome == "queued")
                .values(
                    next_try_at=next_try_at,
                    locked_until=0.0,
                    last_error=error,
                    tries=outbox.c.tries + 1,
                )
            )

    def status_failed(self, row_id: int, error: str) -> None:
        with self.tx() as conn:
            conn.execute(
                update(outbox)
                .where(outbox.c.id == row_id)
                .values(outcome="failed", last_error=error, tries=outbox.c.tries + 1)
            )

    def statuses_for(self, repo: str, sha: str) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(outbox)
                .where(outbox.c.repo == repo, outbox.c.sha == sha)
                .order_by(outbox.c.id)
            ).all()
        return [dict(r._mapping) for r in rows]

    def outbox_backlog(self) -> int:
        with self.engine.connect() as conn:
            return int(
                conn.execute(
                    select(func.count()).select_from(outbox).where(outbox.c.outcome == "queued")
                ).scalar_one()
            )

    # -- reading, for pages and the API ---------------------------------------------------

    def list_builds(self, limit: int = 50) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(builds).order_by(builds.c.id.desc()).limit(limit)).all()
            out = []
            for b in rows:
                a = conn.execute(
                    select(attempts)
                    .where(attempts.c.build_id == b.id)
                    .order_by(attempts.c.number.desc())
                ).first()
                item = dict(b._mapping)
                item["pipelines"] = json.loads(b.pipelines)
                item["attempt"] = dict(a._mapping) if a else None
                out.append(item)
        return out

    def build_detail(self, build_id: int) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            b = conn.execute(select(builds).where(builds.c.id == build_id)).first()
            if b is None:
                return None
            detail = dict(b._mapping)
            detail["pipelines"] = json.loads(b.pipelines)
            detail["attempts"] = []
            for a in conn.execute(
                select(attempts).where(attempts.c.build_id == build_id).order_by(attempts.c.number)
            ).all():
                att = dict(a._mapping)
                att["pipelines"] = []
                for p in conn.execute(
                    select(pipelines)
                    .where(pipelines.c.attempt_id == a.id)
                    .order_by(pipelines.c.position)
                ).all():
                    pipe = dict(p._mapping)
                    pipe["steps"] = [
                        dict(s._mapping)
                        for s in conn.execute(
                            select(steps)
                            .where(steps.c.pipeline_id == p.id)
                            .order_by(steps.c.phase.desc(), steps.c.position)
                        ).all()
                    ]
                    att["pipelines"].append(pipe)
                att["images"] = [
                    dict(i._mapping)
                    for i in conn.execute(
                        select(images).where(images.c.attempt_id == a.id).order_by(images.c.id)
                    ).all()
                ]
                detail["attempts"].append(att)
        return detail

    def attempt_state(self, build_id: int, number: int) -> str | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(attempts.c.state).where(
                    and_(attempts.c.build_id == build_id, attempts.c.number == number)
                )
            ).first()
        return str(row.state) if row else None


class _TxOutbox:
    """The outbox inside one transaction: what ``StatusListener`` writes through."""

    def __init__(self, conn: Connection, now: float) -> None:
        self.conn = conn
        self.now = now

    def add(self, rows: Sequence[StatusRow]) -> None:
        """Appends the rows in one statement."""
        if not rows:
            return
        now = self.now
        self.conn.execute(
            outbox.insert(),
            [
                {
                    "repo": r.repo,
                    "sha": r.sha,
                    "context": r.context,
                    "state": r.state,
                    "description": r.description,
                    "target_url": r.target_url,
                    "created_at": now,
                    "tries": 0,
                    "next_try_at": now,
                    "locked_until": 0.0,
                    "outcome": "queued",
                    "last_error": "",
                }
                for r in rows
            ],
        )

    def latest(self, repo: str, sha: str) -> list[StatusRow]:
        newest = (
            select(func.max(outbox.c.id).label("id"))
            .where(outbox.c.repo == repo, outbox.c.sha == sha)
            .group_by(outbox.c.context)
        ).subquery()
        rows = self.conn.execute(
            select(outbox).join(newest, newest.c.id == outbox.c.id).order_by(outbox.c.id)
        ).all()
        return [
            StatusRow(r.repo, r.sha, r.context, r.state, r.description, r.target_url)
            for r in rows
        ]
