"""Delivers commit statuses from the durable outbox to the forge, with retries and backoff.

A forge outage delays statuses but never fails or loses a build: rows stay ``queued`` until
the forge takes them, or until it says retrying cannot help (then ``failed``, with why).
What a row says was decided by ``bot.reporter`` when it was written; here it is only posted.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from bot.forges.base import Forge, PostOutcome
from bot.store.base import OutboxStore

logger = logging.getLogger(__name__)

LEASE_SECONDS = 30.0
"""How long a row taken for delivery is this process's: longer than one post can take (the
GitHub client gives up after 5 s to connect and 15 s to read), and no longer, since a
process killed mid-post holds its row that long before another delivers it. Rows are taken
one at a time, so a slow forge never lets the lease of a row still waiting run out."""


class StatusDelivery:
    """Delivers due outbox rows in order through ``forge``; one instance per process, built
    by the composition root (``bot.wiring``), run by the worker pool's ``statuses`` thread."""

    def __init__(
        self, store: OutboxStore, forge: Forge, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.store = store
        self.forge = forge
        self._clock = clock

    def deliver_once(self) -> int:
        """Posts every due row once; returns how many were delivered.

        Each row is one attempt (``tries + 1``). Delivered rows are done; a ``RETRY`` waits
        until its ``retry_at``, or, when the forge named no time, ``forge.backoff(attempt)``
        from now; a ``FAILED`` row is final, with the forge's reason."""
        delivered = 0
        seen: set[int] = set()
        while True:
            rows = self.store.claim_statuses(limit=1, lease=LEASE_SECONDS)
            if not rows or rows[0].id in seen:
                return delivered
            row = rows[0]
            seen.add(row.id)
            attempt = row.tries + 1
            outcome = self.forge.post_status(
                row.repo,
                row.sha,
                row.state,
                row.context,
                row.description,
                row.target_url,
                attempt=attempt,
            )
            where = f"status {row.context} for {row.repo}@{row.sha[:7]}"
            if outcome.delivered:
                self.store.status_delivered(row.id)
                delivered += 1
            elif outcome.should_retry:
                retry_at = self._retry_at(outcome, attempt)
                self.store.status_retry(row.id, retry_at, outcome.reason)
                logger.warning(
                    "%s: %s; retrying in %.0fs", where, outcome.reason, retry_at - self._clock()
                )
            else:
                self.store.status_failed(row.id, outcome.reason)
                logger.error("%s failed for good: %s", where, outcome.reason)

    def _retry_at(self, outcome: PostOutcome, attempt: int) -> float:
        if outcome.retry_at is not None:
            return outcome.retry_at
        return self._clock() + self.forge.backoff(attempt)

    def run(self, stop: threading.Event, interval: float = 0.5) -> None:
        while not stop.is_set():
            try:
                self.deliver_once()
            except Exception:  # keep delivering: a bug here must not stop all statuses
                logger.exception("status delivery crashed; continuing")
            stop.wait(interval)
