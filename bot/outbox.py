"""Delivers commit statuses from the durable outbox to GitHub, with retries and backoff.

A GitHub outage delays statuses but never fails or loses a build: rows stay ``queued`` until
GitHub takes them, or until GitHub says retrying cannot help (then ``failed``, with why).
"""

from __future__ import annotations

import logging
import threading
import time

from bot.forges.github import StatusClient
from bot.store.store import Store

logger = logging.getLogger(__name__)


class StatusDelivery:
    """Delivers due outbox rows in order; one instance per process is enough."""

    def __init__(self, store: Store, client: StatusClient) -> None:
        self.store = store
        self.client = client

    def deliver_once(self) -> int:
        """Posts every due row once; returns how many were delivered."""
        delivered = 0
        for row in self.store.claim_statuses():
            outcome = self.client.post(
                row["repo"],
                row["sha"],
                row["state"],
                row["context"],
                row["description"],
                row["target_url"],
                attempt=int(row["tries"]) + 1,
            )
            if outcome.delivered:
                self.store.status_delivered(row["id"])
                delivered += 1
            elif outcome.should_retry:
                retry_at = outcome.retry_at or time.time() + 5
                self.store.status_retry(row["id"], retry_at, outcome.reason)
                logger.warning(
                    "status %s for %s@%s: %s; retrying in %.0fs",
                    row["context"],
                    row["repo"],
                    row["sha"][:7],
                    outcome.reason,
                    retry_at - time.time(),
                )
            else:
                self.store.status_failed(row["id"], outcome.reason)
                logger.error(
                    "status %s for %s@%s failed for good: %s",
                    row["context"],
                    row["repo"],
                    row["sha"][:7],
                    outcome.reason,
                )
        return delivered

    def run(self, stop: threading.Event, interval: float = 0.5) -> None:
        while not stop.is_set():
            try:
                self.deliver_once()
            except Exception:  # keep delivering: a bug here must not stop all statuses
                logger.exception("status delivery crashed; continuing")
            stop.wait(interval)
