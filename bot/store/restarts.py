"""Restarts: an attempt a stopping worker could not let finish ends ``errored`` and its
build is queued again as the next attempt, in its place in its branch's order."""

from __future__ import annotations

import json
import time
from typing import Any

from sqlalchemy import Connection, delete, func, select, update
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
    push). They are queued, so nothing refers to them yet (no pipeline, step, log)."""
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
    ).all()
    if not later:
        return
    conn.execute(delete(attempts).where(attempts.c.id.in_([r.id for r in later])))
    columns = [c.name for c in attempts.columns if c.name != "id"]
    conn.execute(attempts.insert(), [{name: r._mapping[name] for name in columns} for r in later])


class SqlRestarts(Part):
    """``QueueStore.restart_attempt`` on the database."""

    def restart_attempt(self, attempt_id: int, description: str) -> int | None:
        """Ends the running attempt ``attempt_id`` ``errored`` with ``description`` (its
        open pipelines and steps too) and queues the next attempt of its build, ``explicit``
        as it was (a user's re-run stays one: never superseded; a push's stays supersedable
        by a descendant, as it was), ahead of what was queued on its branch meanwhile. The
        listener hears ``stored`` for the new attempt in the same transaction (its
        contexts go back to pending). Returns the new attempt's number, or ``None`` when
        ``attempt_id`` was not running (recovery or a cancel ended it first)."""
        now = time.time()
        with self.db.tx() as conn:
            exclusive(conn, INTAKE_LOCK)
            row = conn.execute(
                select(attempts, builds.c.repo, builds.c.branch, builds.c.sha, builds.c.pipelines)
                .join(builds, builds.c.id == attempts.c.build_id)
                .where(attempts.c.id == attempt_id, attempts.c.state == Result.RUNNING)
            ).first()
            if row is None:
                return None
            conn.execute(
                update(attempts)
                .where(attempts.c.id == attempt_id)
                .values(state=Result.ERRORED, finished_at=now, description=description)
            )
            error_open_rows(conn, attempt_id, description, now)
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
                    description=requeued(int(row.number)),
                )
            )
            _keep_behind(conn, row)
            pipelines = tuple(json.loads(row.pipelines))
            fact = Stored(int(row.build_id), number, str(row.repo), str(row.sha), pipelines)
            self.listener.stored(TxOutbox(conn, now), fact)
            return number
