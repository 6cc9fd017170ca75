"""Plain values shared across the bot: attempt results and how they map to GitHub states."""

from __future__ import annotations

import enum


class Result(enum.StrEnum):
    """The state of an attempt or a pipeline. One table (``GITHUB_STATE``) maps the final
    ones to GitHub commit-status states."""

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


GITHUB_STATE: dict[Result, str] = {
    Result.QUEUED: "pending",
    Result.RUNNING: "pending",
    Result.PASSED: "success",
    Result.SKIPPED: "success",
    Result.FAILED: "failure",
    Result.ERRORED: "error",
    Result.CANCELED: "error",
}


def short_sha(sha: str) -> str:
    return sha[:7]
