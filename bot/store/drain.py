"""The store as a dispatcher drives it: drain a key, fence an attempt, reap lost workers.

- ``claim_key``: what procrastinate's ``drain(key)`` job runs: the newest queued build of
  the key supersedes the older queued ones, and the build to run is marked running under
  the caller's fence token (``attempts.worker``).
- ``fence`` and the ``*_fenced`` writes: a worker proves it still owns its attempt; the
  writes that end an attempt or post a status do so in the same transaction as the proof.
- ``reap_lost``: attempts whose worker stopped heartbeating end ``errored``, and their
  builds are queued again unless a later push of their key supersedes them.
- ``queued_keys``: what ``reconcile`` compares with the dispatcher's pending wake-ups.

SQLAlchemy Core, portable: rows are locked with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL
(SQLite renders no locking clause; its ``BEGIN IMMEDIATE`` serialises writers instead).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Row, and_, func, or_, select, update

from bot.dispatch.keys import key_for, parse_key
from bot.models import WORKER_HOST_LOST, Result
from bot.store.base import LostAttempt
from bot.store.db import INTAKE_LOCK, Part, db_now, exclusive
from bot.store.facts import Recovered, RecoveryReason, Superseded
from bot.store.outbox import TxOutbox
from bot.store.queue import branch_lock, cancel_queued, mark_running
from bot.store.records import error_open_rows
from bot.store.restarts import requeue
from bot.store.rows import BuildRow, Claim, QueuedBuild, StatusRow
from bot.store.schema import attempts, builds

# ``WORKER_HOST_LOST`` (``bot.models``) is still importable from here, where it used to live.
__all__ = ["WORKER_HOST_LOST", "SqlDrain"]

LOST = RecoveryReason.HOST_LOST
"""Why ``reap_lost`` ends an attempt, in its ``Recovered`` facts."""


def _of_key(key: str) -> object:
    """The builds of a key: its branch, or (no branch) its tag."""
    parsed = parse_key(key)
    return and_(
        builds.c.repo == parsed.repo,
        or_(
            builds.c.branch == parsed.name,
            and_(builds.c.branch == "", builds.c.git_tag == parsed.name),
        ),
    )


def _queued_of_key(conn: Connection, key: str) -> list[tuple[QueuedBuild, str, str]]:
    """The key's queued attempts, oldest first, each with its build's branch and tag;
    locked (rows another transaction holds are skipped: it is changing them)."""
    rows = conn.execute(
        select(
            attempts.c.id,
            attempts.c.explicit,
            builds.c.id.label("build_id"),
            builds.c.sha,
            builds.c.branch,
            builds.c.git_tag,
        )
        .join(builds, builds.c.id == attempts.c.build_id)
        .where(_of_key(key), attempts.c.state == Result.QUEUED)  # type: ignore[arg-type]
        .order_by(attempts.c.id)
        .with_for_update(skip_locked=True, of=attempts)
    ).all()
    return [
        (
            QueuedBuild(int(r.id), int(r.build_id), str(r.sha), bool(r.explicit)),
            str(r.branch),
            str(r.git_tag),
        )
        for r in rows
    ]


def _running_in_key(conn: Connection, key: str) -> bool:
    row = conn.execute(
        select(attempts.c.id)
        .join(builds, builds.c.id == attempts.c.build_id)
        .where(_of_key(key), attempts.c.state == Result.RUNNING)  # type: ignore[arg-type]
        .limit(1)
    ).first()
    return row is not None


def _supersede_older(
    conn: Connection, repo: str, queued: list[tuple[QueuedBuild, str, str]], now: float
) -> tuple[list[QueuedBuild], list[Superseded]]:
    """Cancels every non-explicit queued attempt that has a newer non-explicit one of the
    same ref, "Superseded by <newest sha>". Returns what stays queued (oldest first) and
    the facts. A user's redelivery (explicit) is never superseded and never supersedes."""
    newest: dict[tuple[str, str], QueuedBuild] = {}
    for item, branch, tag in queued:
        if not item.explicit:
            newest[(branch, tag)] = item
    kept: list[QueuedBuild] = []
    facts: list[Superseded] = []
    for item, branch, tag in queued:
        winner = newest.get((branch, tag))
        if item.explicit or winner is None or winner.attempt_id == item.attempt_id:
            kept.append(item)
            continue
        facts.extend(cancel_queued(conn, repo, item, winner.sha, now))
    return kept, facts


class SqlDrain(Part):
    """``DrainStore`` on the database."""

    def claim_key(self, key: str, worker: str) -> Claim | None:
        """Drains ``key`` once, in one transaction: supersedes its older queued builds (the
        listener hears ``builds_superseded``), then marks running under ``worker`` (the
        fence token) the oldest attempt left, which is the newest push unless a user's
        redelivery waits before it, and returns it. ``None`` when nothing is queued, or
        when an attempt of the key is still running (a worker not yet reaped): nothing is
        started then, and the running attempt's end or the reaper kicks the key again.

        One claim of a key at a time, on every host: the transaction first waits for the
        key's advisory lock (``branch_lock``, the one ``claim_next`` takes for a branch),
        so the "nothing running" check and the claim are one step. procrastinate's job
        lock alone is not enough: the reaper releases a lost job's lock, and a claimer
        paused after its check would otherwise claim a second attempt of the key when it
        resumes. It waits rather than skips: a claimer that skipped could miss a push the
        holder did not see yet, and nothing would kick the key again."""
        now = time.time()
        parsed = parse_key(key)
        with self.db.tx() as conn:
            exclusive(conn, branch_lock(parsed.repo, parsed.name))
            if _running_in_key(conn, key):
                return None
            queued = _queued_of_key(conn, key)
            kept, facts = _supersede_older(conn, parsed.repo, queued, now)
            self.listener.builds_superseded(TxOutbox(conn, now), facts)
            for item in kept:
                if mark_running(conn, item.attempt_id, worker, now):
                    return self._drain_claim(conn, item)
            return None

    @staticmethod
    def _drain_claim(conn: Connection, item: QueuedBuild) -> Claim:
        number = conn.execute(
            select(attempts.c.number).where(attempts.c.id == item.attempt_id)
        ).scalar_one()
        build = conn.execute(select(builds).where(builds.c.id == item.build_id)).one()
        return Claim(item.attempt_id, int(number), item.explicit, BuildRow.from_row(build))

    def key_has_queued(self, key: str) -> bool:
        """Whether ``key`` has a queued attempt."""
        with self.db.read() as conn:
            row = conn.execute(
                select(attempts.c.id)
                .join(builds, builds.c.id == attempts.c.build_id)
                .where(_of_key(key), attempts.c.state == Result.QUEUED)  # type: ignore[arg-type]
                .limit(1)
            ).first()
        return row is not None

    def queued_keys(self) -> list[str]:
        """Every key with a queued attempt, by its oldest queued attempt."""
        with self.db.read() as conn:
            rows = conn.execute(
                select(builds.c.repo, builds.c.branch, builds.c.git_tag)
                .join(attempts, attempts.c.build_id == builds.c.id)
                .where(attempts.c.state == Result.QUEUED)
                .group_by(builds.c.repo, builds.c.branch, builds.c.git_tag)
                .order_by(func.min(attempts.c.id))
            ).all()
        keys = [key_for(str(r.repo), str(r.branch), str(r.git_tag)) for r in rows]
        return list(dict.fromkeys(keys))

    def fence(self, attempt_id: int, worker: str) -> bool:
        """Renews the attempt's heartbeat (by the database's clock, ``db_now``) if it is
        still running under ``worker``; False (nothing written) when it is not: the caller
        must stop without a trace."""
        with self.db.tx() as conn:
            return _fence(conn, attempt_id, worker)

    def add_fenced(self, attempt_id: int, worker: str, rows: Sequence[StatusRow]) -> bool:
        """Adds status rows to the outbox only while the attempt runs under ``worker``,
        proven in the same transaction; False (nothing written) otherwise."""
        now = time.time()
        with self.db.tx() as conn:
            if not _fence(conn, attempt_id, worker):
                return False
            TxOutbox(conn, now).add(rows)
            return True

    def finish_attempt_fenced(
        self, attempt_id: int, worker: str, state: Result, description: str
    ) -> bool:
        """``finish_attempt`` that fences itself: ends the attempt only while it runs under
        ``worker``; False (nothing written) when a reaper ended it first."""
        with self.db.tx() as conn:
            done = conn.execute(
                update(attempts)
                .where(
                    attempts.c.id == attempt_id,
                    attempts.c.state == Result.RUNNING,
                    attempts.c.worker == worker,
                )
                .values(state=state, description=description, finished_at=time.time())
            )
            return bool(done.rowcount)

    def reap_lost(self, lost_after: float) -> list[LostAttempt]:
        """Ends ``errored`` (``WORKER_HOST_LOST``) every running attempt whose heartbeat is
        older than ``lost_after`` seconds by the database's clock (``db_now``), with its
        open pipelines and steps; the listener hears ``attempts_recovered`` in the same
        transaction. Rows another reaper holds are skipped (it is ending them).

        Nothing lost: in the same transaction, each ended attempt's build is queued again
        as its next attempt (``requeue``, as a restart does; the listener hears ``stored``
        after the error, so its contexts go back to pending), unless a later push of its
        key is queued, which supersedes it (a user's re-run, ``explicit``, is never
        superseded: it is always queued again). Returns what was ended, with each key,
        which the caller kicks."""
        now = time.time()
        with self.db.tx() as conn:
            stale = and_(
                attempts.c.state == Result.RUNNING,
                func.coalesce(attempts.c.heartbeat_at, 0.0) < db_now(conn) - lost_after,
            )
            if conn.execute(select(attempts.c.id).where(stale).limit(1)).first() is None:
                return []  # the usual round: no lock taken, intake never waits on it
            # Before any row lock, as ``restart_attempt``: a re-queue is ordered with intake.
            exclusive(conn, INTAKE_LOCK)
            rows = conn.execute(
                select(attempts, builds.c.repo, builds.c.branch, builds.c.git_tag)
                .add_columns(builds.c.sha, builds.c.pipelines)
                .join(builds, builds.c.id == attempts.c.build_id)
                .where(stale)
                .order_by(attempts.c.id)
                .with_for_update(skip_locked=True, of=attempts)
            ).all()
            ended = [r for r in rows if _end_lost(conn, r, now)]
            self.listener.attempts_recovered(
                TxOutbox(conn, now),
                [
                    Recovered(int(r.id), int(r.build_id), str(r.repo), str(r.sha), LOST)
                    for r in ended
                ],
            )
            for r in ended:
                if r.explicit or not _later_push_queued(conn, r):
                    fact = requeue(conn, r, lost_requeued(int(r.number)), now)
                    self.listener.stored(TxOutbox(conn, now), fact)
        return [
            LostAttempt(
                int(r.id), int(r.build_id), key_for(str(r.repo), str(r.branch), str(r.git_tag))
            )
            for r in ended
        ]


def lost_requeued(lost: int) -> str:
    """The description of the attempt queued in place of the lost attempt ``lost``."""
    return f"Queued again: attempt {lost} was lost with its worker host"


def _end_lost(conn: Connection, row: Row[Any], now: float) -> bool:
    """Ends the lost attempt ``row`` errored with its open rows; False if it had ended."""
    done = conn.execute(
        update(attempts)
        .where(attempts.c.id == row.id, attempts.c.state == Result.RUNNING)
        .values(state=Result.ERRORED, finished_at=now, description=WORKER_HOST_LOST)
    )
    if not done.rowcount:
        return False
    error_open_rows(conn, int(row.id), WORKER_HOST_LOST, now)
    return True


def _later_push_queued(conn: Connection, row: Row[Any]) -> bool:
    """Whether a push of ``row``'s key that arrived after its build is queued: the drain
    would supersede a re-queue of ``row``'s build by it."""
    key = key_for(str(row.repo), str(row.branch), str(row.git_tag))
    found = conn.execute(
        select(attempts.c.id)
        .join(builds, builds.c.id == attempts.c.build_id)
        .where(
            _of_key(key),  # type: ignore[arg-type]
            attempts.c.state == Result.QUEUED,
            attempts.c.explicit.is_(False),
            attempts.c.build_id > row.build_id,
        )
        .limit(1)
    ).first()
    return found is not None


def _fence(conn: Connection, attempt_id: int, worker: str) -> bool:
    done = conn.execute(
        update(attempts)
        .where(
            attempts.c.id == attempt_id,
            attempts.c.state == Result.RUNNING,
            attempts.c.worker == worker,
        )
        .values(heartbeat_at=db_now(conn))
    )
    return bool(done.rowcount)
