"""The store as the queue: claiming the next attempt, heartbeats, recovering what dead
processes left running, and the queued attempts of a branch the worker orders with git."""

from __future__ import annotations

import time
from collections.abc import Sequence

from sqlalchemy import Connection, Select, select, update

from bot.models import WORKER_DIED, Result, short_sha
from bot.procs import process_alive
from bot.store.base import HEARTBEAT_STALE_SECONDS
from bot.store.db import Part
from bot.store.facts import Recovered, Superseded
from bot.store.outbox import TxOutbox
from bot.store.records import error_open_rows
from bot.store.rows import BuildRow, Claim, QueuedBuild
from bot.store.schema import attempts, builds


def queued_builds(
    conn: Connection, repo: str, branch: str, except_build: int
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


def _claimable() -> Select[tuple[int, int, bool, int]]:
    """The oldest queued attempt whose branch has no running attempt. The query itself
    skips busy branches (``NOT EXISTS``), so any number of queued builds behind a running
    one never hide another repository's build."""
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
    return (
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
    )


class SqlQueue(Part):
    """``QueueStore`` on the database."""

    def claim_next(self, worker: str) -> Claim | None:
        """Atomically takes the oldest queued attempt whose branch has nothing running."""
        now = time.time()
        with self.db.tx() as conn:
            row = conn.execute(_claimable()).first()
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

    def heartbeat(self, attempt_id: int) -> None:
        with self.db.tx() as conn:
            conn.execute(
                update(attempts).where(attempts.c.id == attempt_id).values(heartbeat_at=time.time())
            )

    def recover_dead(self, max_age: float = HEARTBEAT_STALE_SECONDS) -> list[int]:
        """Finishes attempts left ``running`` by a dead process as ``errored`` ("worker
        died") and tells the listener. A claimer is dead when its heartbeat is older than
        ``max_age`` (a live attempt beats every few seconds), or, on this host, when its pid
        is gone, a zombie, or this process under an earlier token (``process_alive``)."""
        now = time.time()
        recovered: list[Recovered] = []
        with self.db.tx() as conn:
            rows = conn.execute(
                select(attempts, builds.c.repo, builds.c.sha)
                .join(builds, builds.c.id == attempts.c.build_id)
                .where(attempts.c.state == Result.RUNNING)
            ).all()
            for row in rows:
                stale = (row.heartbeat_at or 0) < now - max_age
                if not stale and process_alive(str(row.worker)) is not False:
                    continue
                conn.execute(
                    update(attempts)
                    .where(attempts.c.id == row.id)
                    .values(state=Result.ERRORED, finished_at=now, description=WORKER_DIED)
                )
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
