"""What one commit-status post came to, and when to try again: the words every forge answers
the outbox in. How a forge's HTTP answers map onto them is the forge's own (for GitHub,
``bot.forges.github.outcome.classify``)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

BACKOFF_BASE = 2.0
BACKOFF_CAP = 300.0


class Outcome(StrEnum):
    DELIVERED = "delivered"
    RETRY = "retry"
    FAILED = "failed"


@dataclass(frozen=True)
class PostOutcome:
    """The result of one attempt.

    - ``DELIVERED``: the forge stored the status.
    - ``RETRY``: try again no sooner than ``retry_at`` (epoch seconds, same clock as the
      caller's ``now``), i.e. ``retry_in`` seconds after the attempt.
    - ``FAILED``: permanent; retrying cannot help (422, 404, 401, …). ``reason`` says why.

    ``reason`` is one line for logs and pages; it never contains the token. ``http_status`` is
    None when no HTTP answer arrived (connection error, timeout).
    """

    outcome: Outcome
    reason: str = ""
    http_status: int | None = None
    retry_in: float | None = None
    retry_at: float | None = None

    @property
    def delivered(self) -> bool:
        return self.outcome is Outcome.DELIVERED

    @property
    def should_retry(self) -> bool:
        return self.outcome is Outcome.RETRY

    @property
    def permanent(self) -> bool:
        return self.outcome is Outcome.FAILED

    @classmethod
    def ok(cls, http_status: int) -> PostOutcome:
        return cls(Outcome.DELIVERED, "delivered", http_status)

    @classmethod
    def retry(
        cls, delay: float, now: float, reason: str, http_status: int | None = None
    ) -> PostOutcome:
        delay = max(0.0, delay)
        return cls(Outcome.RETRY, reason, http_status, delay, now + delay)

    @classmethod
    def failed(cls, reason: str, http_status: int | None = None) -> PostOutcome:
        return cls(Outcome.FAILED, reason, http_status)


def backoff(attempt: int, base: float = BACKOFF_BASE, cap: float = BACKOFF_CAP) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1-based): base·2^(n-1), capped.

    Deterministic on purpose: one bot posts serially (GitHub's advice), so there is no herd
    for jitter to spread, and tests can state exact delays.
    """
    exponent = max(0, attempt - 1)
    if exponent > 62:  # 2**63 would overflow the float maths long after reaching the cap
        return cap
    return float(min(cap, base * math.pow(2, exponent)))
