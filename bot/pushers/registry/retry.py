"""When the registry client tries again, and how long it waits first."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

import requests

# Answers that say "not now": the same request may succeed after a wait.
RETRY_STATUSES = frozenset({408, 429, 499, 500, 502, 503, 504, 522})

Clock = Callable[[], float]
"""Wall-clock seconds since the epoch (``time.time``): token expiry, ``Retry-After`` dates."""
Sleep = Callable[[float], None]
"""Waits that many seconds (``time.sleep``); tests pass one that only records."""


@dataclass(frozen=True)
class RetryPolicy:
    """``attempts`` tries per request (and per blob upload); sleeps ``backoff * factor**n``
    seconds, or ``Retry-After`` when the registry sends one (capped at ``max_wait``). Nothing
    is slept after the last try. Every retry is announced in the build log first
    (``RegistryClient``: cause, wait, and which attempt of how many comes next)."""

    attempts: int = 4
    backoff: float = 1.0
    factor: float = 3.0
    max_wait: float = 60.0

    def wait(
        self, attempt: int, resp: requests.Response | None = None, clock: Clock = time.time
    ) -> float:
        if resp is not None:
            after = retry_after(resp, clock)
            if after is not None:
                return min(after, self.max_wait)
        return min(self.backoff * self.factor**attempt, self.max_wait)


def seconds(wait: float) -> str:
    """``2 s``, ``0.05 s``: a wait as a retry line shows it."""
    return f"{round(wait, 2):g} s"


def retry_after(resp: requests.Response, clock: Clock = time.time) -> float | None:
    """``Retry-After`` in seconds (delta or HTTP date, measured against ``clock``), or None."""
    value = resp.headers.get("Retry-After", "").strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - clock())
    except (TypeError, ValueError):
        return None


def when(wait: float, asked: float | None, max_wait: float) -> str:
    """How a retry line says when the next try comes: the wait, and how it relates to the
    registry's ``Retry-After`` (``asked``) when it sent one."""
    said = seconds(wait)
    if asked is not None and asked > wait:
        return (
            f"{said} (its Retry-After asked for {seconds(asked)}; we wait at most "
            f"{seconds(max_wait)})"
        )
    if asked is not None and seconds(asked) == seconds(wait):
        return f"{said}, as its Retry-After asks"
    return said
