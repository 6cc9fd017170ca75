"""The durable status outbox: rows the reporter adds (in the transaction of the fact or
event they report) and ``bot.outbox`` leases, delivers and marks."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, func, select, update
from sqlalchemy.engine import Row

from bot.store.db import Part
from bot.store.rows import OutboxRow, StatusRow
from bot.store.schema import outbox


class TxOutbox:
    """The outbox inside one transaction: what a ``StatusListener`` writes through."""

    def __init__(self, conn: Connection, now: float) -> None:
        self.conn = conn
        self.now = now

    def add(self, rows: Sequence[StatusRow]) -> None:
        """Appends the rows in one statement, queued for delivery now."""
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
        """The newest row of each context of a commit."""
        newest = (
            select(func.max(outbox.c.id).label("id"))
            .where(outbox.c.repo == repo, outbox.c.sha == sha)
            .group_by(outbox.c.context)
        ).subquery()
        rows = self.conn.execute(
            select(outbox).join(newest, newest.c.id == outbox.c.id).order_by(outbox.c.id)
        ).all()
        return [
            StatusRow(r.repo, r.sha, r.context, r.state, r.description, r.target_url) for r in rows
        ]


def _due_heads(conn: Connection, now: float) -> list[Row[Any]]:
    """The head row of each (repo, sha, context) queue that is due and not leased. A head
    already tried with a newer row behind it is marked ``superseded`` on the way."""
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
                update(outbox).where(outbox.c.id == queue[0].id).values(outcome="superseded")
            )
            queue.pop(0)
        head = queue[0]
        if head.next_try_at <= now and head.locked_until <= now:
            due.append(head)
    return due


def _lease(conn: Connection, row_id: int, now: float, lease: float) -> bool:
    """Leases one row if it is still queued and unleased. On PostgreSQL another host may
    have leased or delivered it since ``_due_heads`` read it: the update then waits for
    that transaction and re-checks its condition on the row as committed (READ
    COMMITTED), so one row is never leased twice."""
    done = conn.execute(
        update(outbox)
        .where(outbox.c.id == row_id, outbox.c.outcome == "queued", outbox.c.locked_until <= now)
        .values(locked_until=now + lease)
    )
    return bool(done.rowcount)


class SqlOutbox(Part):
    """``OutboxStore`` on the database."""

    def add(self, rows: Sequence[StatusRow]) -> None:
        """Appends status rows to the outbox, in one transaction (the reporter's ``Outbox``)."""
        with self.db.tx() as conn:
            TxOutbox(conn, time.time()).add(rows)

    def latest(self, repo: str, sha: str) -> list[StatusRow]:
        """The newest status row of each context of a commit."""
        with self.db.read() as conn:
            return TxOutbox(conn, time.time()).latest(repo, sha)

    def enqueue_status(
        self, repo: str, sha: str, context: str, state: str, description: str, target_url: str
    ) -> None:
        self.add([StatusRow(repo, sha, context, state, description, target_url)])

    def claim_statuses(self, limit: int = 20, lease: float = 60.0) -> list[OutboxRow]:
        """Leases due outbox rows for delivery, at most one per (repo, sha, context) and
        oldest first, so GitHub sees each context's states in order (pending, then final).
        While GitHub is failing, a row that has already been tried and has a newer row
        behind it is marked ``superseded``: GitHub only shows the latest state per context,
        so a backlog after an outage collapses to what still matters."""
        now = time.time()
        with self.db.tx() as conn:
            due = sorted(_due_heads(conn, now), key=lambda r: r.id)[:limit]
            leased = [row for row in due if _lease(conn, row.id, now, lease)]
            return [OutboxRow.from_row(r) for r in leased]

    def status_delivered(self, row_id: int) -> None:
        with self.db.tx() as conn:
            conn.execute(
                update(outbox)
                .where(outbox.c.id == row_id)
                .values(outcome="delivered", delivered_at=time.time(), tries=outbox.c.tries + 1)
            )

    def status_retry(self, row_id: int, next_try_at: float, error: str) -> None:
        with self.db.tx() as conn:
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
        with self.db.tx() as conn:
            conn.execute(
                update(outbox)
                .where(outbox.c.id == row_id)
                .values(outcome="failed", last_error=error, tries=outbox.c.tries + 1)
            )

    def statuses_for(self, repo: str, sha: str) -> list[OutboxRow]:
        """Every outbox row of a commit, oldest first."""
        with self.db.read() as conn:
            rows = conn.execute(
                select(outbox)
                .where(outbox.c.repo == repo, outbox.c.sha == sha)
                .order_by(outbox.c.id)
            ).all()
        return [OutboxRow.from_row(r) for r in rows]

    def outbox_backlog(self) -> int:
        """How many rows wait for delivery."""
        with self.db.read() as conn:
            return int(
                conn.execute(
                    select(func.count()).select_from(outbox).where(outbox.c.outcome == "queued")
                ).scalar_one()
            )
