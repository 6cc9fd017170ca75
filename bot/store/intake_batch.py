"""What one intake transaction (``SqlIntake.record_pushes``) reads once for its whole batch
and keeps up to date as it stores each push, so a push costs its own inserts and not a round
of lookups: ``IntakeBatch`` (deliveries seen, ancestry proofs, builds that may be
superseded) and ``BatchOutbox`` (status rows written once, at the end of the batch).

Pushes of a batch are handled in order, each seeing the ones before it exactly as separate
transactions would have: the batch adds to what it read everything it stores."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import Connection, bindparam, func, select, update

from bot.models import Result, short_sha
from bot.store.facts import Superseded
from bot.store.outbox import TxOutbox
from bot.store.rows import NewPush, StatusRow, is_full_sha
from bot.store.schema import attempts, builds, deliveries, outbox, push_ancestors

# Every read names the leading columns of an index (the tables only grow): deliveries by
# their primary key (hook id, delivery id), builds by (repo, branch), status rows by
# ``ix_outbox_commit`` (repo, sha), proofs by ``ix_push_ancestors_sha``.
_SEEN = select(deliveries.c.hook_id, deliveries.c.delivery_id, deliveries.c.build_id).where(
    deliveries.c.hook_id.in_(bindparam("hooks", expanding=True)),
    deliveries.c.delivery_id.in_(bindparam("ids", expanding=True)),
)
_PROOFS = (
    select(
        builds.c.id, builds.c.repo, builds.c.branch, builds.c.sha, push_ancestors.c.sha.label("of")
    )
    .join(push_ancestors, push_ancestors.c.build_id == builds.c.id)
    .where(push_ancestors.c.sha.in_(bindparam("shas", expanding=True)))
)


_QUEUED_AT = (
    select(
        attempts.c.id,
        attempts.c.state,
        attempts.c.explicit,
        builds.c.id.label("build_id"),
        builds.c.repo,
        builds.c.branch,
        builds.c.sha,
    )
    .join(builds, builds.c.id == attempts.c.build_id)
    .where(
        builds.c.repo.in_(bindparam("repos", expanding=True)),
        builds.c.branch.in_(bindparam("branches", expanding=True)),
        builds.c.sha.in_(bindparam("shas", expanding=True)),
    )
    .order_by(attempts.c.id)
)
"""The attempts of the builds at some commits on some branches (a superset: the caller keeps
the (repo, branch, sha) it wants, and checks the state itself: asked for in SQL, SQLite would
walk every queued attempt through ``ix_attempts_state`` instead of these few builds)."""

_CANCEL = (
    update(attempts)
    .where(attempts.c.id == bindparam("attempt_id"), attempts.c.state == Result.QUEUED)
    .values(
        state=Result.CANCELED,
        finished_at=bindparam("now"),
        description=bindparam("description"),
    )
)
"""``bot.store.queue.cancel_queued``'s update, built once: it runs for nearly every push."""


@dataclass
class IntakeBatch:
    """What one intake transaction knows without asking again: read once for the whole batch
    (four queries), then kept up to date as each push is stored, so each push costs its
    inserts and not a round of lookups. Pushes are handled in order, each seeing the ones
    before it exactly as separate transactions would have.

    ``seen``: (hook id, delivery id) → build. ``proofs``: sha → the builds (id, repo,
    branch, sha) whose payload proved that sha their ancestor. ``queued``: (repo, branch) →
    {attempt id: (build id, sha)} of the queued, non-explicit attempts a push of the batch
    may supersede: those at a commit some push names as an ancestor, and the batch's own."""

    conn: Connection
    now: float
    outbox: BatchOutbox
    seen: dict[tuple[str, str], int] = field(default_factory=dict)
    proofs: dict[str, list[tuple[int, str, str, str]]] = field(default_factory=dict)
    queued: dict[tuple[str, str], dict[int, tuple[int, str]]] = field(default_factory=dict)
    new_deliveries: list[dict[str, object]] = field(default_factory=list)
    new_ancestors: list[dict[str, object]] = field(default_factory=list)

    @classmethod
    def read(cls, conn: Connection, pushes: Sequence[NewPush], now: float) -> IntakeBatch:
        batch = cls(conn, now, BatchOutbox(conn, now))
        hooks = sorted({p.hook_id for p in pushes})
        ids = sorted({p.delivery_id for p in pushes})
        for row in conn.execute(_SEEN, {"hooks": hooks, "ids": ids}):
            batch.seen[(str(row.hook_id), str(row.delivery_id))] = int(row.build_id)
        shas = sorted({p.sha for p in pushes if p.branch and is_full_sha(p.sha)})
        if shas:
            for proof in conn.execute(_PROOFS, {"shas": shas}):
                batch.proofs.setdefault(str(proof.of), []).append(
                    (int(proof.id), str(proof.repo), str(proof.branch), str(proof.sha))
                )
        wanted: dict[tuple[str, str], set[str]] = {}
        for p in pushes:
            if p.branch and p.proven_ancestors:
                wanted.setdefault((p.repo, p.branch), set()).update(p.proven_ancestors)
        if wanted:
            batch.read_queued(wanted)
            # The commits whose open statuses a superseding push resolves.
            batch.outbox.prefetch({repo for repo, _ in wanted}, set().union(*wanted.values()))
        return batch

    def read_queued(self, wanted: dict[tuple[str, str], set[str]]) -> None:
        """Notes the queued, non-explicit attempts of each (repo, branch) at these commits."""
        params = {
            "repos": sorted({repo for repo, _ in wanted}),
            "branches": sorted({branch for _, branch in wanted}),
            "shas": sorted(set().union(*wanted.values())),
        }
        for attempt in self.conn.execute(_QUEUED_AT, params):
            key = (str(attempt.repo), str(attempt.branch))
            if (
                attempt.sha in wanted.get(key, ())
                and attempt.state == Result.QUEUED
                and not attempt.explicit
            ):
                self.queue(*key, int(attempt.id), int(attempt.build_id), str(attempt.sha))

    def queue(self, repo: str, branch: str, attempt_id: int, build_id: int, sha: str) -> None:
        """Notes a queued, non-explicit attempt that a later push may supersede."""
        self.queued.setdefault((repo, branch), {})[attempt_id] = (build_id, sha)

    def supersede(self, push: NewPush, keep_build: int, by_sha: str) -> list[Superseded]:
        """Cancels the queued builds of ``push``'s branch whose commits the payload proves
        to be ancestors of ``push.sha`` ("Superseded by <by_sha>", ``by_sha`` being this
        push or a proven descendant of it), oldest first. Anything else stays queued, for
        the worker to order with git (``Attempt.superseded_by``): a build is only
        superseded by a descendant, whatever order the deliveries arrive in. A user's
        redelivery (explicit) is never superseded."""
        ancestors = push.proven_ancestors
        queued = self.queued.get((push.repo, push.branch), {})
        if not push.branch or not ancestors or not queued:
            return []
        found = sorted(
            (attempt_id, build_id, sha)
            for attempt_id, (build_id, sha) in queued.items()
            if sha in ancestors and build_id != keep_build
        )
        facts: list[Superseded] = []
        description = f"Superseded by {short_sha(by_sha)}"
        for attempt_id, build_id, sha in found:
            del queued[attempt_id]  # canceled now, or it had left the queue meanwhile
            done = self.conn.execute(
                _CANCEL, {"attempt_id": attempt_id, "now": self.now, "description": description}
            )
            if done.rowcount:  # as ``cancel_queued``: nothing if it had left the queue
                facts.append(Superseded(attempt_id, build_id, push.repo, sha, by_sha))
        return facts

    def stored(self, push: NewPush, build_id: int) -> None:
        """Notes a new build of this batch (its delivery and ancestors are written by
        ``flush``, once for the batch)."""
        self.seen[(push.hook_id, push.delivery_id)] = build_id
        self.new_deliveries.append(
            {
                "hook_id": push.hook_id,
                "delivery_id": push.delivery_id,
                "build_id": build_id,
                "received_at": self.now,
            }
        )
        for sha in sorted(push.proven_ancestors if push.branch else set()):
            self.new_ancestors.append({"build_id": build_id, "sha": sha})
            self.proofs.setdefault(sha, []).append((build_id, push.repo, push.branch, push.sha))

    def newer_push(self, push: NewPush) -> str | None:
        """The sha of a stored push on the same branch whose payload proved ``push.sha`` to
        be its ancestor (its ``before`` or one of its ``commits``), if any: GitHub may
        deliver out of order, and an ancestor must never run after its descendant. The
        latest such push (highest build id) is named."""
        if not push.branch or not is_full_sha(push.sha):
            return None
        found = [
            (build_id, sha)
            for build_id, repo, branch, sha in self.proofs.get(push.sha, [])
            if repo == push.repo and branch == push.branch and sha != push.sha
        ]
        return max(found)[1] if found else None

    def flush(self) -> None:
        """Writes the batch's deliveries, proven ancestors and status rows, one statement
        each."""
        self.outbox.flush()
        if self.new_deliveries:
            self.conn.execute(deliveries.insert(), self.new_deliveries)
        if self.new_ancestors:
            self.conn.execute(push_ancestors.insert(), self.new_ancestors)


_NEWEST = (
    select(outbox)
    .where(
        outbox.c.id.in_(
            select(func.max(outbox.c.id))
            .where(
                outbox.c.repo.in_(bindparam("repos", expanding=True)),
                outbox.c.sha.in_(bindparam("shas", expanding=True)),
            )
            .group_by(outbox.c.repo, outbox.c.sha, outbox.c.context)
        )
    )
    .order_by(outbox.c.id)
)


class BatchOutbox:
    """The outbox as the listener sees it during one batch (an ``OutboxWriter``): ``add``
    keeps rows in order and ``flush`` writes them all in one statement, at the end of the
    batch (so they get their ids in the order they were added, as separate inserts would
    have). ``latest`` is the table's newest row per context, read once per batch for the
    commits ``prefetch`` names (else asked of the table), overlaid with the rows added
    since: what it would read had each row been inserted at once."""

    def __init__(self, conn: Connection, now: float) -> None:
        self._tx = TxOutbox(conn, now)
        self._conn = conn
        self._pending: list[StatusRow] = []
        self._stored: dict[tuple[str, str], list[StatusRow]] = {}
        self._known: set[tuple[str, str]] = set()

    def prefetch(self, repos: set[str], shas: set[str]) -> None:
        """Reads the newest stored row of each context of these commits in these
        repositories, oldest first, in one query (once per batch)."""
        assert not self._known, "prefetch is read once per batch"
        self._known = {(repo, sha) for repo in repos for sha in shas}
        if not self._known:
            return
        params = {"repos": sorted(repos), "shas": sorted(shas)}
        for row in self._conn.execute(_NEWEST, params).all():
            self._stored.setdefault((row.repo, row.sha), []).append(
                StatusRow(
                    row.repo, row.sha, row.context, row.state, row.description, row.target_url
                )
            )

    def add(self, rows: Sequence[StatusRow]) -> None:
        """Appends rows, written by ``flush``."""
        self._pending.extend(rows)

    def latest(self, repo: str, sha: str) -> list[StatusRow]:
        """The newest row of each context of a commit, oldest context first."""
        if (repo, sha) in self._known:
            newest = {row.context: row for row in self._stored.get((repo, sha), [])}
        else:
            newest = {row.context: row for row in self._tx.latest(repo, sha)}
        for row in self._pending:
            if row.repo == repo and row.sha == sha:
                newest.pop(row.context, None)  # re-inserted: it is now the newest context
                newest[row.context] = row
        return list(newest.values())

    def flush(self) -> None:
        """Writes the rows added during the batch, in order, in one statement."""
        self._tx.add(self._pending)
        self._pending = []
