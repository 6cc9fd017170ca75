"""Restarts: an attempt a stopping worker could not let finish ends ``errored`` and its
build is queued again as the next attempt, in its place in its branch's order."""

from __future__ import annotations

import json
import time
from typing import Any

from sqlalchemy import Connection, Select, delete, func, select, update
from sqlalchemy.engine import Row

from bot.models import Result
from bot.store.db import INTAKE_LOCK, Part, exclusive
from bot.store.facts import Stored
from bot.store.outbox import TxOutbox
from bot.store.records import error_open_rows
from bot.store.schema import attempts, builds


def requeued(stopped: int) -> str:
    """The description of the attempt queued in place of the stopped attempt ``stopped``."""
    return f"Queued again: attempt {stopped} was stopped by a worker restart"


def _keep_behind(conn: Connection, row: Row[Any]) -> None:
    """Moves the queued attempts of ``row``'s branch behind the attempt just queued for it.

    Claims take the oldest queued attempt (by id) of a branch with nothing running; the
    attempt queued for a restart has the newest id, yet its build arrived before every
    attempt queued on its branch while it ran (the branch was busy: nothing of it could be
    claimed, and it was the oldest when it was). Re-inserting those behind it keeps
    arrival order, which git alone could not restore for unrelated histories (a force
    push). They are queued, so nothing refers to them yet (no pipeline, step, log); they
    are locked first (``FOR UPDATE``, waiting), so one a claim is taking at that moment is
    left alone once it has left the queue."""
    later = conn.execute(
        select(attempts)
        .join(builds, builds.c.id == attempts.c.build_id)
        .where(
            builds.c.repo == row.repo,
            builds.c.branch == row.branch,
            attempts.c.state == Result.QUEUED,
            attempts.c.id > row.id,
            attempts.c.build_id != row.build_id,
        )
        .order_by(attempts.c.id)
        .with_for_update(of=attempts)
    ).all()
    if not later:
        return
    conn.execute(delete(attempts).where(attempts.c.id.in_([r.id for r in later])))
    columns = [c.name for c in attempts.columns if c.name != "id"]
    conn.execute(attempts.insert(), [{name: r._mapping[name] for name in columns} for r in later])


def requeue(conn: Connection, row: Row[Any], description: str, now: float) -> Stored:
    """Queues the next attempt of ``row``'s build (``row``: an attempt joined with its
    build's ``repo``, ``branch``, ``sha`` and ``pipelines``), ``explicit`` as ``row`` was,
    with ``description``, ahead of what was queued on its branch meanwhile
    (``_keep_behind``), in the caller's transaction, which must hold ``INTAKE_LOCK``.
    Returns the ``Stored`` fact of the new attempt, for the listener."""
    last = conn.execute(
        select(func.max(attempts.c.number)).where(attempts.c.build_id == row.build_id)
    ).scalar_one()
    number = int(last) + 1
    conn.execute(
        attempts.insert().values(
            build_id=row.build_id,
            number=number,
            state=Result.QUEUED,
            explicit=bool(row.explicit),
            created_at=now,
            description=description,
        )
    )
    _keep_behind(conn, row)
    pipelines = tuple(json.loads(row.pipelines))
    return Stored(int(row.build_id), number, str(row.repo), str(row.sha), pipelines)


def running_with_build(attempt_id: int) -> Select[Any]:
    """The running attempt ``attempt_id`` with what ``requeue`` needs of its build, locked
    (``FOR UPDATE``: a reaper or a cancel ending it waits, or is waited for)."""
    return (
        select(attempts, builds.c.repo, builds.c.branch, builds.c.sha, builds.c.pipelines)
        .join(builds, builds.c.id == attempts.c.build_id)
        .where(attempts.c.id == attempt_id, attempts.c.state == Result.RUNNING)
        .with_for_update(of=attempts)
    )


class SqlRestarts(Part):
    """``QueueStore.restart_attempt`` on the database."""

    def restart_attempt(
        self, attempt_id: int, description: str, worker: str | None = None
    ) -> int | None:
        """Ends the running attempt ``attempt_id`` ``errored`` with ``description`` (its
        open pipelines and steps too) and queues the next attempt of its build, ``explicit``
        as it was (a user's re-run stays one: never superseded; a push's stays supersedable
        by a descendant, as it was), ahead of what was queued on its branch meanwhile. The
        listener hears ``stored`` for the new attempt in the same transaction (its
        contexts go back to pending). Returns the new attempt's number, or ``None``,
        changing nothing, when ``attempt_id`` was not running, or not under ``worker``
        (its fence token, when given): a reaper, recovery or a cancel ended it first.

        The attempt is read ``FOR UPDATE`` and ended only while still running under its
        token, so a reaper ending it at the same moment either waits for this transaction
        (and then finds it ended) or is waited for (and this finds it ended): never both."""
        now = time.time()
        with self.db.tx() as conn:
            exclusive(conn, INTAKE_LOCK)
            row = conn.execute(running_with_build(attempt_id)).first()
            if row is None:
                return None
            owner = row.worker if worker is None else worker
            done = conn.execute(
                update(attempts)
                .where(
                    attempts.c.id == attempt_id,
                    attempts.c.state == Result.RUNNING,
                    attempts.c.worker == owner,
                )
                .values(state=Result.ERRORED, finished_at=now, description=description)
            )
            if not done.rowcount:
                return None
            error_open_rows(conn, attempt_id, description, now)
            fact = requeue(conn, row, requeued(int(row.number)), now)
            self.listener.stored(TxOutbox(conn, now), fact)
            return fact.attempt
