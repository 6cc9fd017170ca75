"""The store's seams: what each part of the bot may ask of the store, as Protocols.

- ``IntakeStore``: the webhook stores a push (``record_push``, or a batch of them in one
  transaction: ``record_pushes``).
- ``QueueStore``: workers claim queued attempts, beat, and order a branch's queue.
- ``AttemptRecords``: what a running attempt writes (pipelines, steps, images, its log).
- ``OutboxStore``: the durable status outbox, written by the reporter and drained by
  ``bot.outbox``.
- ``LogReads`` and ``ReadModels``: what pages and the API read.
- ``Store``: all of them. ``bot.store.sql.SqlStore`` implements it (SQLAlchemy Core on
  SQLite); tests may use an in-memory fake typed against these Protocols.

The store only persists and reports facts (``bot.store.facts``) to its ``StatusListener``
inside the transaction that makes them; it decides nothing about statuses. Every method may
raise ``bot.errors.StoreUnavailable`` when the database cannot be used (full disk, I/O
error, locked past the busy timeout); a write that raises has kept nothing.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from bot.models import Result
from bot.store.facts import Recovered, Stored, Superseded
from bot.store.rows import (
    BuildDetail,
    BuildSummary,
    Claim,
    Intake,
    LogPage,
    LogTail,
    NewPush,
    OutboxRow,
    QueuedBuild,
    StatusRow,
)

HEARTBEAT_STALE_SECONDS = 120.0
"""A running attempt whose heartbeat is older than this belongs to a dead process."""
LOG_ROW_CHARS = 16 * 1024
"""A log row holds at most this many characters (≤ 64 KB of UTF-8): reads stop at rows."""
LOG_PAGE_BYTES = 256 * 1024
"""The default size of one page of log text served or read at once."""
READ_ROW_CHARS = 64 * 1024
"""Rows stored before rows were bounded may be huge; a read takes at most this much of one."""


class OutboxWriter(Protocol):
    """The status outbox as the reporter writes it: the store, or one of its transactions."""

    def add(self, rows: Sequence[StatusRow]) -> None:
        """Appends status rows to the outbox, all or none, queued for delivery now."""
        ...

    def latest(self, repo: str, sha: str) -> list[StatusRow]:
        """The newest status row of each context of a commit, oldest context first."""
        ...


class StatusListener(Protocol):
    """Told the store's facts inside the transaction that makes them (``bot.reporter``):
    whatever it adds to the outbox is kept, or dropped, with the fact."""

    def stored(self, outbox: OutboxWriter, fact: Stored) -> None: ...

    def builds_superseded(self, outbox: OutboxWriter, facts: Sequence[Superseded]) -> None: ...

    def attempts_recovered(self, outbox: OutboxWriter, facts: Sequence[Recovered]) -> None: ...


class IntakeStore(Protocol):
    """What the webhook needs: store a push durably before answering."""

    def record_push(self, push: NewPush) -> Intake:
        """Stores a push durably (before the webhook is answered) and queues its attempt.

        The same (hook id, delivery id) while its build is queued or running is ignored
        (``Intake.ignored``); after it finished it becomes attempt N+1, ``explicit`` (a
        user's re-run, honoured even for an old commit, superseding nothing). Intake uses
        only what payloads prove (``NewPush.proven_ancestors``): a new push cancels the
        queued, non-explicit builds of its branch it proves to be its ancestors; a push
        that an earlier-stored push proves to be its ancestor is stored canceled
        ("Superseded by …"). Everything else stays queued, in arrival order. The listener
        hears ``stored`` (and ``builds_superseded``) in the same transaction."""
        ...

    def record_pushes(self, pushes: Sequence[NewPush]) -> list[Intake]:
        """``record_push`` of each push, in order, in ONE transaction (group commit: one
        commit for a burst of webhooks); their answers, in order. Each push sees the ones
        before it as if they had been stored alone. All are kept, or none (it raises)."""
        ...


class QueueStore(Protocol):
    """The store as the queue: claims, heartbeats, recovery and a branch's order."""

    def claim_next(self, worker: str) -> Claim | None:
        """Atomically marks running and returns the oldest queued attempt whose branch
        (repository and branch) has nothing running; ``None`` when there is none. Queued
        builds behind a busy branch never hide another branch's build."""
        ...

    def heartbeat(self, attempt_id: int) -> None:
        """Records that the attempt's process is alive now."""
        ...

    def recover_dead(self, max_age: float = HEARTBEAT_STALE_SECONDS) -> list[int]:
        """Finishes attempts left running by a dead process (heartbeat older than
        ``max_age``, or, on this host, a claimer process that is gone) as ``errored``,
        ends their open pipelines and steps, tells the listener ``attempts_recovered``,
        and returns their ids."""
        ...

    def running_attempt_ids(self) -> list[int]:
        """The ids of all attempts marked running, by any process."""
        ...

    def queued_on_branch(self, repo: str, branch: str, except_build: int) -> list[QueuedBuild]:
        """The queued attempts of ``repo``'s ``branch`` other than ``except_build``'s, in
        arrival order: what the worker compares with git before running a build."""
        ...

    def supersede(self, repo: str, queued: Sequence[QueuedBuild], by_sha: str) -> list[int]:
        """Cancels the given queued attempts, "Superseded by <by_sha>", and tells the
        listener ``builds_superseded``; a user's redelivery (``explicit``) and an attempt
        that has left the queue meanwhile are left alone. Returns the ids canceled."""
        ...

    def newest_built_sha(self, repo: str, branch: str, before_build: int) -> str | None:
        """The sha of the latest build of this branch that arrived before ``before_build``
        and passed (by finish time): what the branch's tags point at now."""
        ...

    def restart_attempt(
        self, attempt_id: int, description: str, worker: str | None = None
    ) -> int | None:
        """Ends the running attempt ``attempt_id`` as ``errored`` with ``description`` (its
        open pipelines and steps too) and, in the same transaction, queues the next attempt
        of its build: ``explicit`` as the stopped one was, claimed before anything queued on
        its branch meanwhile (arrival order), the listener told ``stored`` for it (its
        contexts back to pending). Returns the new attempt's number; ``None``, changing
        nothing, when the attempt was not running, or not under ``worker`` (its fence
        token, when given). (``bot.store.restarts``)"""
        ...


@dataclass(frozen=True)
class LostAttempt:
    """An attempt the reaper ended (``DrainStore.reap_lost``), with its dispatch key."""

    attempt_id: int
    build_id: int
    key: str


class DrainStore(Protocol):
    """The store as a ``bot.dispatch`` dispatcher drives it: drain one key, fence an
    attempt, reap lost workers (``bot.store.drain``). ``worker`` is the fence token the
    claim wrote in ``attempts.worker``; keys are ``bot.dispatch.keys``'."""

    def claim_key(self, key: str, worker: str) -> Claim | None:
        """Supersedes the key's older queued builds by its newest ("Superseded by <sha>",
        the listener told) and marks running under ``worker`` the oldest attempt left (the
        newest push, unless a user's redelivery waits before it), in one transaction.
        ``None`` when nothing is queued or an attempt of the key is still running."""
        ...

    def key_has_queued(self, key: str) -> bool:
        """Whether ``key`` has a queued attempt."""
        ...

    def queued_keys(self) -> list[str]:
        """Every key with a queued attempt, oldest first."""
        ...

    def fence(self, attempt_id: int, worker: str) -> bool:
        """Renews the heartbeat of the attempt if it runs under ``worker``; False (nothing
        written) when it does not any more."""
        ...

    def add_fenced(self, attempt_id: int, worker: str, rows: Sequence[StatusRow]) -> bool:
        """``OutboxWriter.add``, only while the attempt runs under ``worker`` (proven in
        the same transaction); False, nothing written, otherwise."""
        ...

    def finish_attempt_fenced(
        self, attempt_id: int, worker: str, state: Result, description: str
    ) -> bool:
        """``finish_attempt``, only while the attempt runs under ``worker``; False, nothing
        written, otherwise."""
        ...

    def reap_lost(self, lost_after: float) -> list[LostAttempt]:
        """Ends ``errored`` ("Worker host lost") every running attempt whose heartbeat is
        older than ``lost_after`` seconds, its open pipelines and steps too; the listener
        hears ``attempts_recovered`` in the same transaction. Returns what it ended."""
        ...


class AttemptRecords(Protocol):
    """What a running attempt writes about itself. Ids are the store's row ids."""

    def finish_attempt(self, attempt_id: int, state: Result, description: str) -> None:
        """Ends the attempt with its result and description, stamped now."""
        ...

    def set_attempt_runner(self, attempt_id: int, runner: str) -> None:
        """Records which runner kind runs the attempt."""
        ...

    def start_pipeline(self, attempt_id: int, position: int, name: str) -> int:
        """Adds a running pipeline, started now; returns its id."""
        ...

    def add_pipeline(
        self, attempt_id: int, position: int, name: str, state: Result, desc: str
    ) -> None:
        """Adds a pipeline that did not run (e.g. skipped), with its state and why."""
        ...

    def finish_pipeline(self, pipeline_id: int, state: Result, description: str) -> None:
        """Ends a pipeline with its result, stamped now."""
        ...

    def error_open_pipelines(self, attempt_id: int, description: str) -> None:
        """Ends as ``errored`` the pipelines (queued or running) and steps (running) an
        aborted attempt left open."""
        ...

    def start_step(
        self, pipeline_id: int, position: int, phase: str, step_id: str, name: str
    ) -> int:
        """Adds a running step (``phase``: main or after), started now; returns its id."""
        ...

    def finish_step(
        self, step_row: int, state: Result, exit_code: int | None, message: str
    ) -> None:
        """Ends a step with its result, exit code and message, stamped now."""
        ...

    def add_image(
        self,
        attempt_id: int,
        pipeline: str,
        registry: str,
        repository: str,
        tags: Sequence[str],
        digest: str,
    ) -> None:
        """Records an image the attempt pushed."""
        ...

    def append_log(self, attempt_id: int, text: str) -> None:
        """Appends ``text`` (already masked) to the attempt's log and bumps its heartbeat,
        in one transaction, in rows of at most ``LOG_ROW_CHARS`` characters. Empty text
        stores nothing."""
        ...


class OutboxStore(OutboxWriter, Protocol):
    """The durable status outbox: the reporter adds rows, ``bot.outbox`` delivers them."""

    def enqueue_status(
        self, repo: str, sha: str, context: str, state: str, description: str, target_url: str
    ) -> None:
        """Adds one status row (``add`` of one ``StatusRow``)."""
        ...

    def claim_statuses(self, limit: int = 20, lease: float = 60.0) -> list[OutboxRow]:
        """Leases (for ``lease`` seconds) at most ``limit`` due rows, oldest first and at
        most one per (repo, sha, context), so each context's states reach the forge in
        order. A row already tried with a newer row of its context behind it is marked
        ``superseded`` instead: the forge shows only the latest state per context."""
        ...

    def status_delivered(self, row_id: int) -> None:
        """Marks a row delivered (one more try)."""
        ...

    def status_retry(self, row_id: int, next_try_at: float, error: str) -> None:
        """Releases a still-queued row for another try at ``next_try_at``, noting why."""
        ...

    def status_failed(self, row_id: int, error: str) -> None:
        """Marks a row failed for good, noting why."""
        ...

    def statuses_for(self, repo: str, sha: str) -> list[OutboxRow]:
        """Every outbox row of a commit, oldest first, whatever its outcome."""
        ...

    def outbox_backlog(self) -> int:
        """How many rows wait for delivery (outcome ``queued``)."""
        ...


class LogReads(Protocol):
    """Bounded reads of an attempt's log: no read returns more than a page."""

    def log_page(
        self, attempt_id: int, after_id: int = 0, max_bytes: int = LOG_PAGE_BYTES
    ) -> LogPage:
        """The log rows after row ``after_id``, oldest first, up to ``max_bytes`` of UTF-8
        (at least one row, so a reader always advances). ``next_id`` is the cursor for the
        next page; ``more`` says whether rows were left for it."""
        ...

    def log_text(
        self, attempt_id: int, after_id: int = 0, max_bytes: int = LOG_PAGE_BYTES
    ) -> tuple[str, int]:
        """``(text, cursor)`` of ``log_page``; never the whole log."""
        ...

    def log_tail(self, attempt_id: int, max_bytes: int = LOG_PAGE_BYTES) -> LogTail:
        """The last ``max_bytes`` (at most) of the log. When the log is longer, the text
        starts at a line start inside the window and ``complete`` is false. ``last_id``
        is the newest row's id, the cursor for ``log_page``."""
        ...

    def iter_log(self, attempt_id: int, page_bytes: int = LOG_PAGE_BYTES) -> Iterator[str]:
        """The whole log as pages of about ``page_bytes``, each read on its own (no read
        stays open while a slow client downloads)."""
        ...

    def log_attempt_id(self, build_id: int, number: int) -> int | None:
        """The id of attempt ``number`` of build ``build_id``, or ``None``."""
        ...


class ReadModels(Protocol):
    """What the build pages and the API read."""

    def list_builds(self, limit: int = 50) -> list[BuildSummary]:
        """The newest ``limit`` builds, newest first, each with its newest attempt."""
        ...

    def build_detail(self, build_id: int) -> BuildDetail | None:
        """A build with its attempts (oldest first), their pipelines (in order, with their
        steps: main, then after, each by position) and images; ``None`` if unknown."""
        ...

    def attempt_state(self, build_id: int, number: int) -> str | None:
        """The state of attempt ``number`` of build ``build_id``, or ``None``."""
        ...


class Store(
    IntakeStore,
    QueueStore,
    DrainStore,
    AttemptRecords,
    OutboxStore,
    LogReads,
    ReadModels,
    Protocol,
):
    """All of the store: builds, attempts, pipelines, steps, images, logs, deliveries and
    the status outbox; it doubles as the queue. Safe to call from several threads and
    processes."""
