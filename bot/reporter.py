"""Statuses as a reporter: the one module that decides what GitHub sees.

It owns the state table (``Result`` → commit-status state), the context names
(``<status_context>/<pipeline>``), the descriptions (masked first, then cut to 140 characters
in one place, ``describe``) and the target URL (``<base_url>/builds/<id>``). It listens to
build events and writes outbox rows; it never posts (``bot.outbox`` delivers the rows).

Two kinds of events reach it:
- facts the store reports from inside its own transaction (``stored``,
  ``builds_superseded``, ``attempts_recovered``), written through the transaction's outbox,
  so a build is never stored without its pending statuses, nor canceled without its error;
- an attempt's progress (``BuildReporter``), written through the store's outbox.

It lives in ``bot/`` and not in ``bot/forges/github``: it listens to the core's events and
the store's facts, while the GitHub package stays free of the store and of builds.
"""

from __future__ import annotations

from collections.abc import Sequence

from bot.forges.github.descriptions import LIMIT, truncate_description, utf16_len
from bot.masking import Masker
from bot.models import WORKER_DIED, WORKER_HOST_LOST, Result, short_sha
from bot.store.base import OutboxWriter
from bot.store.facts import Recovered, RecoveryReason, Stored, Superseded
from bot.store.rows import StatusRow

GITHUB_STATE: dict[Result, str] = {
    Result.QUEUED: "pending",
    Result.RUNNING: "pending",
    Result.PASSED: "success",
    Result.SKIPPED: "success",
    Result.FAILED: "failure",
    Result.ERRORED: "error",
    Result.CANCELED: "error",
}
PENDING = GITHUB_STATE[Result.QUEUED]

QUEUED = "Queued"
RUNNING = "Running"
NO_WERCKER_YML = "Skipped: no wercker.yml on this commit"
NOT_DEFINED = "Skipped: pipeline not defined in wercker.yml"
LOG_INCOMPLETE = "(log incomplete: store write failed)"
RECOVERED: dict[RecoveryReason, str] = {
    RecoveryReason.WORKER_DIED: WORKER_DIED,
    RecoveryReason.HOST_LOST: WORKER_HOST_LOST,
}
"""What the open contexts of a recovered attempt say, by why it was recovered (the same
words the store wrote on the attempt)."""


def contexts_for(status_context: str, pipelines: Sequence[str]) -> list[str]:
    return [f"{status_context}/{name}" for name in pipelines]


def context_for(status_context: str, pipeline: str) -> str:
    return contexts_for(status_context, [pipeline])[0]


def build_url(base_url: str, build_id: int | str) -> str:
    return f"{base_url}/builds/{build_id}"


def superseded(by_sha: str) -> str:
    return f"Superseded by {short_sha(by_sha)}"


def queued(attempt: int) -> str:
    return QUEUED if attempt == 1 else f"{QUEUED} (attempt {attempt})"


def describe(text: str, masker: Masker | None = None, *, log_incomplete: bool = False) -> str:
    """The description GitHub gets: masked before anything cuts it (a secret cut in half is
    no longer found), then cut to 140 characters here and nowhere else. When the store lost
    part of the log, the text is shortened first so the ``LOG_INCOMPLETE`` note survives."""
    if masker is not None:
        text = masker.mask(text)
    if log_incomplete:
        room = LIMIT - utf16_len(LOG_INCOMPLETE) - 1
        text = f"{truncate_description(text, room)} {LOG_INCOMPLETE}"
    return truncate_description(text)


def _open(outbox: OutboxWriter, repo: str, sha: str) -> list[StatusRow]:
    """The contexts of a commit whose newest status is still pending."""
    return [row for row in outbox.latest(repo, sha) if row.state == PENDING]


class Reporter:
    """Turns build events into outbox rows. ``status_context`` and ``base_url`` come from the
    settings (the composition root); the store's facts carry only what happened to a build."""

    def __init__(self, status_context: str, base_url: str) -> None:
        self.status_context = status_context
        self.base_url = base_url

    def for_build(
        self, outbox: OutboxWriter, repo: str, sha: str, build_id: int, masker: Masker | None = None
    ) -> BuildReporter:
        return BuildReporter(
            outbox,
            repo=repo,
            sha=sha,
            status_context=self.status_context,
            target_url=build_url(self.base_url, build_id),
            masker=masker,
        )

    # facts the store reports inside its transaction ---------------------------------------

    def stored(self, outbox: OutboxWriter, fact: Stored) -> None:
        """A push (or a redelivery) was stored: its contexts go pending, or straight to error
        when a newer push was stored before it."""
        if fact.superseded_by is not None:
            state, description = GITHUB_STATE[Result.CANCELED], superseded(fact.superseded_by)
        else:
            state, description = PENDING, queued(fact.attempt)
        url = build_url(self.base_url, fact.build_id)
        outbox.add(
            [
                StatusRow(fact.repo, fact.sha, c, state, describe(description), url)
                for c in contexts_for(self.status_context, fact.pipelines)
            ]
        )

    def builds_superseded(self, outbox: OutboxWriter, facts: Sequence[Superseded]) -> None:
        """Queued builds were canceled for a descendant: their open contexts end in error."""
        for fact in facts:
            self._resolve(outbox, fact.repo, fact.sha, superseded(fact.by_sha))

    def attempts_recovered(self, outbox: OutboxWriter, facts: Sequence[Recovered]) -> None:
        """Attempts of a dead process or a lost host were finished: their open contexts end
        in error, saying which (``RECOVERED``)."""
        for fact in facts:
            self._resolve(outbox, fact.repo, fact.sha, RECOVERED[fact.reason])

    def _resolve(self, outbox: OutboxWriter, repo: str, sha: str, description: str) -> None:
        state = GITHUB_STATE[Result.CANCELED]
        outbox.add(
            [
                StatusRow(repo, sha, row.context, state, describe(description), row.target_url)
                for row in _open(outbox, repo, sha)
            ]
        )


class BuildReporter:
    """The statuses of one build's attempt, each written as it happens."""

    def __init__(
        self,
        outbox: OutboxWriter,
        *,
        repo: str,
        sha: str,
        status_context: str,
        target_url: str,
        masker: Masker | None = None,
    ) -> None:
        self.outbox = outbox
        self.repo = repo
        self.sha = sha
        self.status_context = status_context
        self.target_url = target_url
        self.masker = masker

    def _post(
        self, names: Sequence[str], state: str, text: str, log_incomplete: bool = False
    ) -> None:
        description = describe(text, self.masker, log_incomplete=log_incomplete)
        self.outbox.add(
            [
                StatusRow(self.repo, self.sha, c, state, description, self.target_url)
                for c in contexts_for(self.status_context, names)
            ]
        )

    def pipeline_started(self, name: str) -> None:
        self._post([name], PENDING, RUNNING)

    def pipeline_finished(
        self, name: str, state: Result, description: str, log_incomplete: bool = False
    ) -> None:
        self._post([name], GITHUB_STATE[state], description, log_incomplete)

    def pipeline_skipped(self, name: str, after: Result, reason: str) -> None:
        """``after`` is the result of the pipeline that did not pass: failed → failure (the
        user's side), errored → error (the bot's side), so a skipped deploy never looks
        green."""
        self._post([name], GITHUB_STATE[after], reason)

    def pipelines_not_defined(self, names: Sequence[str]) -> None:
        for name in names:
            self._post([name], GITHUB_STATE[Result.SKIPPED], NOT_DEFINED)

    def no_wercker_yml(self, names: Sequence[str]) -> None:
        for name in names:
            self._post([name], GITHUB_STATE[Result.SKIPPED], NO_WERCKER_YML)

    def attempt_finished(
        self, names: Sequence[str], state: Result, description: str, log_incomplete: bool = False
    ) -> None:
        """The attempt ended: every context still open gets its final state."""
        for name in names:
            self._post([name], GITHUB_STATE[state], description, log_incomplete)
