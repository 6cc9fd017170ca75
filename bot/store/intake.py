"""Intake: a push stored durably before the webhook is answered, with its attempt queued,
or ignored, or stored canceled when a push stored earlier proves it older.

Intake orders deliveries only by what payloads prove (``NewPush.proven_ancestors``: no
clone, no network call). Everything it cannot prove stays queued, in arrival order, for the
worker to decide with git (behaviour §3)."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import replace

from sqlalchemy import Connection, select

from bot.models import Result, short_sha
from bot.store.db import INTAKE_LOCK, Part, exclusive
from bot.store.facts import Stored
from bot.store.intake_batch import IntakeBatch
from bot.store.rows import Intake, NewPush
from bot.store.schema import attempts, builds


def _add_attempt(
    conn: Connection,
    build_id: int,
    number: int,
    state: Result,
    description: str,
    *,
    explicit: bool,
    now: float,
) -> int:
    """Adds attempt ``number`` of a build (a canceled one is finished at once); its id."""
    result = conn.execute(
        attempts.insert(),
        {
            "build_id": build_id,
            "number": number,
            "state": state,
            "explicit": explicit,
            "created_at": now,
            "finished_at": now if state == Result.CANCELED else None,
            "description": description,
        },
    )
    return int(result.inserted_primary_key[0])  # type: ignore[index]


def _insert_build(conn: Connection, push: NewPush, now: float) -> int:
    """Stores the build; its id. Its delivery and ancestors are the batch's (``IntakeBatch``)."""
    return int(
        conn.execute(
            builds.insert(),
            {
                "repo": push.repo,
                "ref": push.ref,
                "branch": push.branch,
                "git_tag": push.git_tag,
                "sha": push.sha,
                "before_sha": push.before_sha,
                "message": push.message,
                "pusher": push.pusher,
                "html_url": push.html_url,
                "pipelines": json.dumps(list(push.pipelines)),
                "created_at": now,
            },
        ).inserted_primary_key[0]  # type: ignore[index]
    )


class SqlIntake(Part):
    """``IntakeStore`` on the database."""

    def record_push(self, push: NewPush) -> Intake:
        """Stores a push durably (before the webhook is answered) and queues its attempt:
        ``record_pushes`` of one push."""
        return self.record_pushes([push])[0]

    def record_pushes(self, pushes: Sequence[NewPush]) -> list[Intake]:
        """Stores pushes in ONE transaction (one commit, one fsync), each exactly as
        ``record_push`` would have one after the other, in order; their answers, in order.
        All are kept or none (``StoreUnavailable`` or another error: nothing was stored).

        The same (hook id, delivery id) while its build is queued or running is ignored;
        after it finished it becomes attempt N+1 (a user's re-run, honoured even for an old
        commit). A build is superseded only by a descendant (behaviour §3), and intake uses
        only what payloads prove (``NewPush.proven_ancestors``; no clone, no network call):
        a new push cancels the queued builds of its branch whose commits it proves to be
        its ancestors ("Superseded by …"); a push that an earlier-stored push proves to be
        its ancestor is stored canceled, so an older commit never overwrites a newer tag.
        Everything else stays queued, in arrival order, for the worker to decide with git.
        """
        if not pushes:
            return []
        now = time.time()
        with self.db.tx() as conn:
            exclusive(conn, INTAKE_LOCK)
            batch = IntakeBatch.read(conn, pushes, now)
            answers = [self._record(batch, push) for push in pushes]
            batch.flush()
            return answers

    def _record(self, batch: IntakeBatch, push: NewPush) -> Intake:
        """One push of the batch (``record_pushes``)."""
        conn, now = batch.conn, batch.now
        build_id = batch.seen.get((push.hook_id, push.delivery_id))
        if build_id is not None:
            return self._redelivered(batch, build_id)
        build_id = _insert_build(conn, push, now)
        newer = batch.newer_push(push)
        batch.stored(push, build_id)
        stored = Stored(build_id, 1, push.repo, push.sha, tuple(push.pipelines))
        if newer is not None:
            return self._stored_superseded(batch, push, stored, newer)
        canceled = batch.supersede(push, build_id, push.sha)
        self.listener.builds_superseded(batch.outbox, canceled)
        attempt_id = _add_attempt(
            conn, build_id, 1, Result.QUEUED, "Queued", explicit=False, now=now
        )
        if push.branch:
            batch.queue(push.repo, push.branch, attempt_id, build_id, push.sha)
        self.listener.stored(batch.outbox, stored)
        return Intake(build_id, 1)

    def _redelivered(self, batch: IntakeBatch, build_id: int) -> Intake:
        """A delivery seen before: ignored while its build is in progress, else re-run as
        the next attempt. A re-run is not a new push: it supersedes nothing queued."""
        conn, now = batch.conn, batch.now
        last = conn.execute(
            select(attempts)
            .where(attempts.c.build_id == build_id)
            .order_by(attempts.c.number.desc())
        ).first()
        assert last is not None
        if last.state in (Result.QUEUED, Result.RUNNING):
            return Intake(build_id, int(last.number), "already in progress")
        number = int(last.number) + 1
        _add_attempt(
            conn, build_id, number, Result.QUEUED, "Redelivered: re-run", explicit=True, now=now
        )
        build = conn.execute(select(builds).where(builds.c.id == build_id)).one()
        self.listener.stored(
            batch.outbox,
            Stored(
                build_id,
                number,
                str(build.repo),
                str(build.sha),
                tuple(json.loads(build.pipelines)),
            ),
        )
        return Intake(build_id, number)

    def _stored_superseded(
        self,
        batch: IntakeBatch,
        push: NewPush,
        stored: Stored,
        newer: str,
    ) -> Intake:
        """Stores the push's attempt canceled, "Superseded by <newer>": an earlier-stored
        push proved it older. What this push proves older than itself is older than
        ``newer`` too, and is canceled the same way."""
        conn, now = batch.conn, batch.now
        desc = f"Superseded by {short_sha(newer)}"
        _add_attempt(conn, stored.build_id, 1, Result.CANCELED, desc, explicit=False, now=now)
        self.listener.stored(batch.outbox, replace(stored, superseded_by=newer))
        self.listener.builds_superseded(batch.outbox, batch.supersede(push, stored.build_id, newer))
        return Intake(stored.build_id, 1)
