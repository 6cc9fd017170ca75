"""The store's plain rows (``bot.store.rows``)."""

from __future__ import annotations

from bot.store.rows import ZERO_SHA, AttemptRow, BuildRow, BuildSummary, is_full_sha
from tests.harness.builds import new_push

A, B, C = "a" * 40, "b" * 40, "c" * 40


def test_proven_ancestors_are_before_and_commits_but_the_sha_itself() -> None:
    push = new_push(sha=C, before_sha=A, commits=(B, C, "not-a-sha"))
    assert push.proven_ancestors == {A, B}


def test_a_forced_push_or_a_new_branch_proves_nothing_by_its_before() -> None:
    assert new_push(sha=C, before_sha=A, forced=True).proven_ancestors == set()
    assert new_push(sha=C, before_sha=ZERO_SHA).proven_ancestors == set()


def test_is_full_sha() -> None:
    assert is_full_sha(A) and not is_full_sha(ZERO_SHA)
    assert not is_full_sha("A" * 40) and not is_full_sha("a" * 39)


def test_to_json_nests_rows_and_lists_sequences() -> None:
    build = BuildRow(
        1, "acme/app", "refs/heads/main", "main", "", A, "", "m", "p", "", ("build",), 1.0
    )
    attempt = AttemptRow(7, 1, 1, "queued", "Queued", False, "", "", None, 1.0, None, None)
    data = BuildSummary.of(build, attempt).to_json()
    assert data["pipelines"] == ["build"]
    assert data["attempt"]["id"] == 7 and data["attempt"]["heartbeat_at"] is None
    assert BuildSummary.of(build, None).to_json()["attempt"] is None
