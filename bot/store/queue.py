"""The store as the queue: claiming the next attempt, heartbeats, recovering what dead
processes left running, and the queued attempts of a branch the worker orders with git."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Row, Select, func, select, tuple_, update

from bot.models import WORKER_DIED, Result, short_sha
from bot.procs import process_alive
from bot.store.base import HEARTBEAT_STALE_SECONDS
from bot.store.db import Part, db_now, try_lock
from bot.store.facts import Recovered, Superseded
from bot.store.outbox import TxOutbox
from bot.store.records import error_open_rows
from bot.store.rows import BuildRow, Claim, QueuedBuild
from bot.store.schema import attempts, builds


def queued_builds(conn: Connection, repo: str, branch: str, except_build: int) -> list[QueuedBuild]:
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
        QueuedBuild(int(r.attempt_id), int(r.build_id), str(r.sha), bool(r.explicit)) for r in rows
    ]


def cancel_queued(
    conn: Connection, repo: str, item: QueuedBuild, by_sha: str, now: float
) -> list[Superseded]:
    """Cancels one attempt, "Superseded by <by_sha>", if it is still queued: the fact, or
    nothing when it had left the queue meanwhile."""
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


def _claimable(
    skipped: Sequence[tuple[str, str]] = (), branch: tuple[str, str] | None = None
) -> Select[tuple[int, int, bool, int, str, str]]:
    """The oldest queued attempt whose branch has no running attempt, outside the
    ``skipped`` (repo, branch) pairs, or only on ``branch``. The query itself skips busy
    branches (``NOT EXISTS``), so any number of queued builds behind a running one never
    hide another repository's build."""
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
    query = (
        select(
            attempts.c.id.label("attempt_id"),
            attempts.c.number,
            attempts.c.explicit,
            builds.c.id.label("build_id"),
            builds.c.repo,
            builds.c.branch,
        )
        .join(builds, builds.c.id == attempts.c.build_id)
        .where(attempts.c.state == Result.QUEUED, ~branch_busy)
        .order_by(attempts.c.id)
        .limit(1)
    )
    if skipped:
        query = query.where(tuple_(builds.c.repo, builds.c.branch).not_in(list(skipped)))
    if branch is not None:
        query = query.where(builds.c.repo == branch[0], builds.c.branch == branch[1])
    return query


def mark_running(conn: Connection, attempt_id: int, worker: str, now: float) -> bool:
    """Sets a queued attempt running under ``worker`` (its claim and fence token), in the
    caller's transaction, its first heartbeat by the database's clock (``db_now``); False
    when it was no longer queued."""
    taken = conn.execute(
        update(attempts)
        .where(attempts.c.id == attempt_id, attempts.c.state == Result.QUEUED)
        .values(
            state=Result.RUNNING,
            worker=worker,
            started_at=now,
            heartbeat_at=db_now(conn),
            description="Running",
        )
    )
    return bool(taken.rowcount)


def branch_lock(repo: str, branch: str) -> str:
    """The advisory lock (``try_lock``, ``exclusive``) a claim of ``repo``'s ``branch`` (or
    tag, for ``claim_key``) holds while it checks that nothing of it runs and claims."""
    return f"wercker-bot claim {repo}\n{branch}"


def _take_next(conn: Connection) -> Row[Any] | None:
    """The attempt this claim may run, locked for it, or None.

    How a claim stays safe with claimers on several hosts (PostgreSQL, READ COMMITTED):
    1. pick the branch of the oldest claimable attempt (a plain read, no lock);
    2. ``try_lock`` that branch's advisory lock, held until commit; if another claimer
       holds it, skip the branch (never wait: claimers never block each other);
    3. holding it, read the branch's oldest claimable attempt again, ``FOR UPDATE SKIP
       LOCKED``. This is a new statement, so it sees every claim of the branch committed
       before the lock was ours: a branch whose attempt a claimer has just set running is
       now busy and is skipped. A row another transaction is changing (being superseded)
       is skipped, not waited for.
    So two claimers never take one attempt (row lock, and ``state = 'queued'`` in the
    update) and never run two attempts of one branch (the branch lock covers the check
    *and* the update). On SQLite ``BEGIN IMMEDIATE`` already excludes every other writer:
    the lock is always ours and ``FOR UPDATE`` renders as nothing.

    Why an advisory lock: row locks alone cannot hold "one running per branch" under READ
    COMMITTED (two claimers lock two different queued rows of one branch, and neither sees
    the other's uncommitted claim); SERIALIZABLE would need every caller to replay its
    transaction on a serialization failure; a per-branch row to lock would need a new
    table kept in step by intake. The advisory lock needs no schema, is shared by every
    host, ends with the transaction (a dead claimer's goes with its connection), and a
    hash collision only makes a claimer skip a branch for one round."""
    skipped: list[tuple[str, str]] = []
    while (first := conn.execute(_claimable(skipped)).first()) is not None:
        branch = (str(first.repo), str(first.branch))
        if try_lock(conn, branch_lock(*branch)):
            row = conn.execute(
                _claimable(branch=branch).with_for_update(of=attempts, skip_locked=True)
            ).first()
            if row is not None:
                return row
        skipped.append(branch)
    return None


class SqlQueue(Part):
    """``QueueStore`` on the database."""

    def claim_next(self, worker: str) -> Claim | None:
        """Atomically takes the oldest queued attempt whose branch has nothing running
        (``_take_next``: safe for claimers in several processes on several hosts)."""
        now = time.time()
        with self.db.tx() as conn:
            row = _take_next(conn)
            if row is None:
                return None
            taken = mark_running(conn, row.attempt_id, worker, now)
            assert taken, "a locked queued attempt changed under its claim"
            build = conn.execute(select(builds).where(builds.c.id == row.build_id)).one()
            return Claim(
                int(row.attempt_id), int(row.number), bool(row.explicit), BuildRow.from_row(build)
            )

    def heartbeat(self, attempt_id: int) -> None:
        """Renews the attempt's heartbeat, by the database's clock (``db_now``)."""
        with self.db.tx() as conn:
            conn.execute(
                update(attempts)
                .where(attempts.c.id == attempt_id)
                .values(heartbeat_at=db_now(conn))
            )

    def recover_dead(self, max_age: float = HEARTBEAT_STALE_SECONDS) -> list[int]:
        """Finishes attempts left ``running`` by a dead process as ``errored`` ("worker
        died") and tells the listener. A claimer is dead when its heartbeat is older than
        ``max_age`` (a live attempt beats every few seconds; by the database's clock,
        ``db_now``), or, on this host, when its pid is gone, a zombie, or this process under
        an earlier token (``process_alive``)."""
        now = time.time()
        recovered: list[Recovered] = []
        with self.db.tx() as conn:
            stale_at = db_now(conn) - max_age
            rows = conn.execute(
                select(
                    attempts,
                    builds.c.repo,
                    builds.c.sha,
                    (func.coalesce(attempts.c.heartbeat_at, 0.0) < stale_at).label("stale"),
                )
                .join(builds, builds.c.id == attempts.c.build_id)
                .where(attempts.c.state == Result.RUNNING)
            ).all()
            for row in rows:
                if not row.stale and process_alive(str(row.worker)) is not False:
                    continue
                # Only if still running: a claimer on another host may be reaping it too,
                # or its worker may have just finished it (PostgreSQL runs them side by side).
                done = conn.execute(
                    update(attempts)
                    .where(attempts.c.id == row.id, attempts.c.state == Result.RUNNING)
                    .values(state=Result.ERRORED, finished_at=now, description=WORKER_DIED)
                )
                if not done.rowcount:
                    continue
                error_open_rows(conn, int(row.id), WORKER_DIED, now)
                recovered.append(
                    Recovered(int(row.id), int(row.build_id), str(row.repo), str(row.sha))
                )
            self.listener.attempts_recovered(TxOutbox(conn, now), recovered)
        return [fact.attempt_id for fact in recovered]

    def running_attempt_ids(self) -> list[int]:
        with self.db.read() as conn:
            rows = conn.execute(
                select(attempts.c.id).where(attempts.c.state == Result.RUNNING)
            ).all()
        return [int(r.id) for r in rows]

    def queued_on_branch(self, repo: str, branch: str, except_build: int) -> list[QueuedBuild]:
        """The queued attempts of ``repo``'s ``branch`` other than ``except_build``'s, in
        arrival order: what the worker compares with git before running a build."""
        with self.db.read() as conn:
            return queued_builds(conn, repo, branch, except_build)

    def supersede(self, repo: str, queued: Sequence[QueuedBuild], by_sha: str) -> list[int]:
        """Cancels the given queued attempts, "Superseded by <by_sha>", and tells the
        listener; a user's redelivery and an attempt that has left the queue meanwhile are
        left alone. Returns the ids of the attempts canceled."""
        now = time.time()
        with self.db.tx() as conn:
            facts = [
                fact
                for item in queued
                if not item.explicit
                for fact in cancel_queued(conn, repo, item, by_sha, now)
            ]
            self.listener.builds_superseded(TxOutbox(conn, now), facts)
        return [fact.attempt_id for fact in facts]

    def newest_built_sha(self, repo: str, branch: str, before_build: int) -> str | None:
        """The sha of the latest build of this branch that arrived before ``before_build``
        and passed: what the branch's tags point at now."""
        with self.db.read() as conn:
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
