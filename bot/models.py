"""Plain values shared across the bot: attempt results (``bot.reporter`` maps them to
GitHub states)."""

from __future__ import annotations

import enum


class Result(enum.StrEnum):
    """The state of an attempt or a pipeline. One table (``bot.reporter.GITHUB_STATE``) maps
    them to GitHub commit-status states."""

    QUEUED = "queued"
    RUNNING = "running"
    PASSED = "passed"
    FAILED = "failed"  # the user's code or the registry said no
    ERRORED = "errored"  # config or infrastructure: the bot could not do its job
    CANCELED = "canceled"
    SKIPPED = "skipped"

    @property
    def final(self) -> bool:
        return self not in (Result.QUEUED, Result.RUNNING)


def short_sha(sha: str) -> str:
    return sha[:7]


WORKER_RESTARTED = "Worker restarted"
"""What an attempt stopped at the end of a graceful shutdown's grace says (the next attempt
of its build is queued)."""

WORKER_DIED = "Worker died while running this build; redeliver the webhook to re-run"
"""What an attempt recovered from a dead process says: in the store's records, on the build
page and in its commit statuses alike."""
WORKER_HOST_LOST = "Worker host lost while running this build"
"""What an attempt the reaper ended says (its worker stopped heartbeating: the host is gone,
cut off or paused), in the same three places. Its build is queued again as the next attempt
when it is still the newest of its branch; otherwise the newer queued build runs next."""
