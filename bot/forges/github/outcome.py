"""GitHub's answers to one commit-status POST, as a ``PostOutcome`` (github-facts §3.1, §3.4).

Pure policy, no I/O: ``classify`` maps an HTTP answer to a ``PostOutcome``; ``backoff`` (the
exponential delay) and the outcome types are the forge-neutral ones of ``bot.forges.outcome``.
The durable outbox that persists attempts is the caller's.
"""

from __future__ import annotations

import email.utils
from collections.abc import Mapping

from bot.forges.github.headers import header
from bot.forges.outcome import BACKOFF_BASE, BACKOFF_CAP, Outcome, PostOutcome, backoff

__all__ = [
    "BACKOFF_BASE",
    "BACKOFF_CAP",
    "MAX_RESET_WAIT",
    "SECONDARY_LIMIT_WAIT",
    "Outcome",
    "PostOutcome",
    "backoff",
    "classify",
    "retry_after_seconds",
]

# GitHub: with no retry-after and no exhausted primary limit, wait "at least one minute".
SECONDARY_LIMIT_WAIT = 60.0
# x-ratelimit-reset is at most an hour ahead; anything beyond is clock skew, not a plan.
MAX_RESET_WAIT = 3600.0 + 60.0


def retry_after_seconds(value: str | None, now: float) -> float | None:
    """``Retry-After`` as seconds from ``now``: delta-seconds or an HTTP-date; None if absent
    or unreadable."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now)


def _reset_wait(headers: Mapping[str, str], now: float) -> float | None:
    """Seconds until ``x-ratelimit-reset`` when the primary limit is spent, else None."""
    if (header(headers, "x-ratelimit-remaining") or "").strip() != "0":
        return None
    reset = (header(headers, "x-ratelimit-reset") or "").strip()
    if not reset.isdigit():
        return None
    # +1: the reset second itself may still count against the old window.
    return min(MAX_RESET_WAIT, max(0.0, float(reset) - now) + 1.0)


def classify(
    status: int, headers: Mapping[str, str], message: str, attempt: int, now: float
) -> PostOutcome:
    """Maps one HTTP answer to an outcome, following GitHub's documented retry algorithm.

    ``message`` is GitHub's error text, already free of secrets; it goes into the reason.
    """
    reason = f"GitHub {status}: {message}" if message else f"GitHub answered {status}"
    if 200 <= status < 300:
        return PostOutcome.ok(status)
    retry_after = retry_after_seconds(header(headers, "retry-after"), now)
    if status in (403, 429):
        if retry_after is not None:
            return PostOutcome.retry(retry_after, now, f"rate limited; {reason}", status)
        reset_wait = _reset_wait(headers, now)
        if reset_wait is not None:
            return PostOutcome.retry(reset_wait, now, f"rate limit spent; {reason}", status)
        lowered = message.lower()
        # "abuse" is the older wording of the secondary limit, still seen on GHES.
        if status == 429 or "rate limit" in lowered or "abuse" in lowered:
            delay = max(SECONDARY_LIMIT_WAIT, backoff(attempt))
            return PostOutcome.retry(delay, now, f"secondary rate limit; {reason}", status)
        return PostOutcome.failed(f"{reason} (the token may lack statuses write access)", status)
    if status >= 500 or status == 408:
        delay = retry_after if retry_after is not None else backoff(attempt)
        return PostOutcome.retry(delay, now, reason, status)
    if status == 401:
        return PostOutcome.failed(f"{reason} (check github.token)", status)
    if status == 404:
        return PostOutcome.failed(
            f"{reason} (the repository is not visible to the token, or it lacks statuses "
            "write access)",
            status,
        )
    return PostOutcome.failed(reason, status)
