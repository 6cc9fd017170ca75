"""Intake: a push stored durably before the webhook is answered, with its attempt queued,
or ignored, or stored canceled when a push stored earlier proves it older.

Intake orders deliveries only by what payloads prove (``NewPush.proven_ancestors``: no
clone, no network call). Everything it cannot prove stays queued, in arrival order, for the
worker to decide with git (behaviour §3)."""

from __future__ import annotations

import json
import time
from dataclasses import replace

from sqlalchemy import Connection, select

from bot.models import Result, short_sha
from bot.store.db import Part
from bot.store.facts import Stored, Superseded
from bot.store.outbox import TxOutbox
from bot.store.queue import cancel_queued, queued_builds
from bot.store.rows import Intake, NewPush, is_full_sha
from bot.store.schema import attempts, builds, deliveries, push_ancestors


def _seen_build(conn: Connection, push: NewPush) -> int | None:
    """The build a (hook id, delivery id) already stored, if any."""
    seen = conn.execute(
        select(deliveries.c.build_id).where(
            deliveries.c.hook_id == push.hook_id,
            deliveries.c.delivery_id == push.delivery_id,
        )
    ).first()
    return int(seen.build_id) if seen is not None else None


def _add_attempt(
    conn: Connection,
    build_id: int,
    number: int,
    state: Result,
    description: str,
    *,
    explicit: bool,
    now: float,
) -> None:
    """Adds attempt ``number`` of a build; a canceled one is finished at once."""
    conn.execute(
        attempts.insert().values(
            build_id=build_id,
            number=number,
            state=state,
            explicit=explicit,
            created_at=now,
            finished_at=now if state == Result.CANCELED else None,
            description=description,
        )
    )


def _insert_build(conn: Connection, push: NewPush, now: float) -> int:
    """Stores the build, its delivery and the ancestors its payload proves; its id."""
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
            hook_id=push.hook_id, delivery_id=push.delivery_id, build_id=build_id, received_at=now
        )
    )
    ancestors = push.proven_ancestors if push.branch else set()
    if ancestors:
        conn.execute(
            push_ancestors.insert(),
            [{"build_id": build_id, "sha": sha} for sha in sorted(ancestors)],
        )
    return build_id


def newer_push(conn: Connection, push: NewPush) -> str | None:
    """The sha of a stored push on the same branch whose payload proved ``push.sha`` to
    be its ancestor (its ``before`` or one of its ``commits``), if any: GitHub may
    deliver out of order, and an ancestor must never run after its descendant. The
    latest such push is named."""
    if not push.branch or not is_full_sha(push.sha):
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


def supersede_proven(
    conn: Connection, push: NewPush, keep_build: int, by_sha: str, now: float
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
        for item in queued_builds(conn, push.repo, push.branch, keep_build)
        if item.sha in ancestors and not item.explicit
        for fact in cancel_queued(conn, push.repo, item, by_sha, now)
    ]


class SqlIntake(Part):
    """``IntakeStore`` on the database."""

    def record_push(self, push: NewPush) -> Intake:
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
        with self.db.tx() as conn:
            build_id = _seen_build(conn, push)
            if build_id is not None:
                return self._redelivered(conn, build_id, now)
            build_id = _insert_build(conn, push, now)
            stored = Stored(build_id, 1, push.repo, push.sha, tuple(push.pipelines))
            newer = newer_push(conn, push)
            if newer is not None:
                return self._stored_superseded(conn, push, stored, newer, now)
            canceled = supersede_proven(conn, push, build_id, push.sha, now)
            self.listener.builds_superseded(TxOutbox(conn, now), canceled)
            _add_attempt(conn, build_id, 1, Result.QUEUED, "Queued", explicit=False, now=now)
            self.listener.stored(TxOutbox(conn, now), stored)
            return Intake(build_id, 1)

    def _redelivered(self, conn: Connection, build_id: int, now: float) -> Intake:
        """A delivery seen before: ignored while its build is in progress, else re-run as
        the next attempt. A re-run is not a new push: it supersedes nothing queued."""
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
            TxOutbox(conn, now),
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
        self, conn: Connection, push: NewPush, stored: Stored, newer: str, now: float
    ) -> Intake:
        """Stores the push's attempt canceled, "Superseded by <newer>": an earlier-stored
        push proved it older. What this push proves older than itself is older than
        ``newer`` too, and is canceled the same way."""
        desc = f"Superseded by {short_sha(newer)}"
        _add_attempt(conn, stored.build_id, 1, Result.CANCELED, desc, explicit=False, now=now)
        out = TxOutbox(conn, now)
        self.listener.stored(out, replace(stored, superseded_by=newer))
        self.listener.builds_superseded(
            out, supersede_proven(conn, push, stored.build_id, newer, now)
        )
        return Intake(stored.build_id, 1)
