"""Facts the store tells its ``StatusListener`` (``bot.store.base``) inside the transaction
that makes them. The store reports what happened; the reporter decides what GitHub sees."""

from __future__ import annotations

import enum
from dataclasses import dataclass


@dataclass(frozen=True)
class Stored:
    """Fact: intake stored attempt ``attempt`` of build ``build_id``; queued, or stored
    canceled when an earlier-stored push proved it older (``superseded_by``)."""

    build_id: int
    attempt: int
    repo: str
    sha: str
    pipelines: tuple[str, ...]
    superseded_by: str | None = None


@dataclass(frozen=True)
class Superseded:
    """Fact: the queued attempt ``attempt_id`` of build ``build_id`` was canceled for the
    descendant ``by_sha``."""

    attempt_id: int
    build_id: int
    repo: str
    sha: str
    by_sha: str


class RecoveryReason(enum.StrEnum):
    """Why a running attempt was ended by someone other than its worker."""

    WORKER_DIED = "worker died"
    """Its process, on a host sharing the store's file, is gone (``recover_dead``)."""
    HOST_LOST = "host lost"
    """Its worker stopped heartbeating for ``lost_after`` seconds, on whatever host it runs
    (``reap_lost``, the PostgreSQL store's reaper)."""


@dataclass(frozen=True)
class Recovered:
    """Fact: the attempt ``attempt_id``, left running by a worker that is gone (``reason``),
    was finished ``errored``. Its build is not queued again."""

    attempt_id: int
    build_id: int
    repo: str
    sha: str
    reason: RecoveryReason = RecoveryReason.WORKER_DIED
