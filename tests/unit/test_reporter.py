"""The reporter decides every status GitHub sees; an in-memory outbox stands in for the store."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from bot.forges.github import GitHubForge
from bot.masking import Masker
from bot.models import WORKER_DIED, WORKER_HOST_LOST, Result
from bot.reporter import (
    GITHUB_STATE,
    LOG_INCOMPLETE,
    NO_WERCKER_YML,
    NOT_DEFINED,
    BuildReporter,
    Reporter,
    build_url,
    context_for,
    describe,
)
from bot.settings import GitHubSettings
from bot.store.base import OutboxWriter
from bot.store.facts import Recovered, RecoveryReason, Stored, Superseded
from bot.store.rows import StatusRow
from tests.harness.github_fake import GitHubFake

A, B, C = "a" * 40, "b" * 40, "c" * 40
URL = "http://bot/builds/1"
REPORTER = Reporter("wb", "http://bot")


class MemoryOutbox:
    """``OutboxWriter`` in a list: what a transaction or the store would append."""

    def __init__(self, rows: Sequence[StatusRow] = ()) -> None:
        self.rows: list[StatusRow] = list(rows)

    def add(self, rows: Sequence[StatusRow]) -> None:
        self.rows.extend(rows)

    def latest(self, repo: str, sha: str) -> list[StatusRow]:
        newest: dict[str, StatusRow] = {}
        for row in self.rows:
            if row.repo == repo and row.sha == sha:
                newest[row.context] = row
        return list(newest.values())


def _outbox(rows: Sequence[StatusRow] = ()) -> MemoryOutbox:
    out = MemoryOutbox(rows)
    typed: OutboxWriter = out  # the fake keeps to the Protocol
    assert typed is out
    return out


def _summary(rows: Sequence[StatusRow]) -> list[tuple[str, str, str, str]]:
    return [(r.sha[:1], r.context, r.state, r.description) for r in rows]


def _build(out: MemoryOutbox, masker: Masker | None = None) -> BuildReporter:
    return Reporter("wb", "http://bot").for_build(out, "acme/app", A, 1, masker)


def test_state_table_context_and_url() -> None:
    assert GITHUB_STATE[Result.SKIPPED] == "success"
    assert GITHUB_STATE[Result.FAILED] == "failure"
    assert GITHUB_STATE[Result.CANCELED] == GITHUB_STATE[Result.ERRORED] == "error"
    assert context_for("wb", "deploy") == "wb/deploy"
    assert build_url("http://bot", 7) == "http://bot/builds/7"


def test_stored_queues_every_context_pending() -> None:
    out = _outbox()
    fact = Stored(1, 1, "acme/app", A, ("build", "deploy"))
    REPORTER.stored(out, fact)
    assert _summary(out.rows) == [
        ("a", "wb/build", "pending", "Queued"),
        ("a", "wb/deploy", "pending", "Queued"),
    ]
    assert {r.target_url for r in out.rows} == {URL}  # the reporter's, built from the id


def test_a_redelivery_names_its_attempt_and_an_older_push_is_stored_in_error() -> None:
    out = _outbox()
    REPORTER.stored(out, Stored(1, 3, "acme/app", A, ("build",)))
    REPORTER.stored(out, Stored(2, 1, "acme/app", B, ("build",), superseded_by=C))
    assert _summary(out.rows) == [
        ("a", "wb/build", "pending", "Queued (attempt 3)"),
        ("b", "wb/build", "error", "Superseded by ccccccc"),
    ]


def test_superseded_builds_resolve_only_their_open_contexts() -> None:
    old = "http://bot/builds/old"
    out = _outbox(
        [
            StatusRow("acme/app", A, "wb/build", "pending", "Queued", old),
            StatusRow("acme/app", A, "wb/deploy", "pending", "Queued", old),
            StatusRow("acme/app", A, "wb/deploy", "success", "done", old),
            StatusRow("acme/app", B, "wb/build", "pending", "Queued", old),
        ]
    )
    REPORTER.builds_superseded(out, [Superseded(1, 1, "acme/app", A, by_sha=C)])
    assert _summary(out.rows[4:]) == [("a", "wb/build", "error", "Superseded by ccccccc")]
    assert out.rows[4].target_url == old  # the URL the context already had


@pytest.mark.parametrize(
    ("reason", "words"),
    [(RecoveryReason.WORKER_DIED, WORKER_DIED), (RecoveryReason.HOST_LOST, WORKER_HOST_LOST)],
)
def test_recovered_attempts_end_their_open_contexts_saying_why(
    reason: RecoveryReason, words: str
) -> None:
    out = _outbox([StatusRow("acme/app", A, "wb/build", "pending", "Running", URL)])
    REPORTER.attempts_recovered(out, [Recovered(7, 1, "acme/app", A, reason)])
    assert _summary(out.rows[1:]) == [("a", "wb/build", "error", words)]
    REPORTER.attempts_recovered(out, [Recovered(7, 1, "acme/app", A, reason)])
    assert len(out.rows) == 2  # nothing open any more


def test_a_recovered_fact_says_its_worker_died_unless_told_otherwise() -> None:
    # ``recover_dead`` (one host) names no reason: its attempts' processes died.
    assert Recovered(7, 1, "acme/app", A).reason is RecoveryReason.WORKER_DIED


def test_attempt_events() -> None:
    out = _outbox()
    report = _build(out)
    report.pipeline_started("build")
    report.pipeline_finished("build", Result.FAILED, "Step 'x' failed (exit 2)")
    report.pipeline_skipped("deploy", Result.FAILED, "Skipped: 'build' did not pass")
    report.pipelines_not_defined(["lint"])
    report.no_wercker_yml(["other"])
    report.attempt_finished(["late"], Result.CANCELED, "Superseded by ccccccc")
    assert _summary(out.rows) == [
        ("a", "wb/build", "pending", "Running"),
        ("a", "wb/build", "failure", "Step 'x' failed (exit 2)"),
        ("a", "wb/deploy", "failure", "Skipped: 'build' did not pass"),
        ("a", "wb/lint", "success", NOT_DEFINED),
        ("a", "wb/other", "success", NO_WERCKER_YML),
        ("a", "wb/late", "error", "Superseded by ccccccc"),
    ]
    assert {r.target_url for r in out.rows} == {URL}


def test_descriptions_are_cut_to_140_in_one_place() -> None:
    out = _outbox()
    _build(out).pipeline_finished("build", Result.FAILED, "x" * 300)
    (row,) = out.rows
    assert len(row.description) == 140 and row.description.endswith("…")
    assert describe("one\ntwo") == "one two"


def test_a_long_description_reaches_github_cut_to_140_by_the_reporter_alone(
    github_fake: GitHubFake,
) -> None:
    """The reporter's row goes through the forge as it is (the forge cuts nothing)."""
    out = _outbox()
    _build(out).pipeline_finished("build", Result.FAILED, "Step 'x' failed: " + "e" * 300)
    forge = GitHubForge(GitHubSettings(api_url=github_fake.url, token="ghs_reporterToken"))
    (row,) = out.rows
    posted = forge.post_status(
        row.repo, row.sha, row.state, row.context, row.description, row.target_url, attempt=1
    )
    assert posted.delivered, posted.reason
    (body,) = github_fake.statuses("acme/app", A)
    assert body["description"] == row.description
    assert len(body["description"]) == 140
    assert body["description"].endswith("…")
    assert github_fake.violations == []


def test_masking_happens_before_the_cut() -> None:
    secret = "s3cr3t-token-value"
    text = "y" * 130 + secret  # the cut would leave part of the secret behind
    out = _outbox()
    _build(out, Masker([secret])).pipeline_finished("build", Result.FAILED, text)
    assert "s3cr" not in out.rows[0].description
    assert len(out.rows[0].description) <= 140


def test_the_log_incomplete_note_survives_the_cut() -> None:
    out = _outbox()
    report = _build(out)
    report.pipeline_finished("build", Result.PASSED, "z" * 300, log_incomplete=True)
    report.attempt_finished(["deploy"], Result.ERRORED, "short", log_incomplete=True)
    long_row, short_row = out.rows
    assert long_row.description.endswith(LOG_INCOMPLETE) and len(long_row.description) <= 140
    assert short_row.description == f"short {LOG_INCOMPLETE}"


class CountingMasker(Masker):
    def __init__(self, secrets: Sequence[str]) -> None:
        super().__init__(secrets)
        self.calls = 0

    def mask(self, text: str) -> str:
        self.calls += 1
        return super().mask(text)


def test_a_status_description_is_masked_once_per_status() -> None:
    """The reporter masks; nothing between it and the forge masks again (the forge posts the
    row as it is: see the test above it that posts through GitHubForge)."""
    masker = CountingMasker(["s3cr3t-token-value"])
    out = _outbox()
    report = _build(out, masker)
    report.pipeline_finished("build", Result.FAILED, "leaked s3cr3t-token-value", True)
    assert masker.calls == 1
    report.attempt_finished(["deploy", "late"], Result.ERRORED, "s3cr3t-token-value again")
    assert masker.calls == 3  # one per context's status
    assert all("s3cr3t" not in r.description for r in out.rows)
