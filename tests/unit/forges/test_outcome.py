"""``bot.forges.outcome``: the forge-neutral answer to one post (``PostOutcome``) and the
deterministic ``backoff()`` (github-facts §3.4)."""

from __future__ import annotations

import pytest

from bot.forges.outcome import BACKOFF_CAP, Outcome, PostOutcome, backoff


def test_backoff_doubles_from_two_seconds_and_is_capped() -> None:
    assert [backoff(n) for n in range(1, 8)] == [2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0]
    assert backoff(9) == 300.0
    assert backoff(10_000) == 300.0
    assert backoff(0) == backoff(-3) == 2.0


def test_backoff_takes_its_base_and_cap() -> None:
    assert [backoff(n, base=1.0, cap=5.0) for n in range(1, 6)] == [1.0, 2.0, 4.0, 5.0, 5.0]
    assert backoff(64) == backoff(10**9) == BACKOFF_CAP  # no float overflow on the way


def test_each_outcome_answers_exactly_one_question() -> None:
    answers = [
        (out.delivered, out.should_retry, out.permanent)
        for out in (PostOutcome.ok(201), PostOutcome.retry(5, 100.0, "r"), PostOutcome.failed("f"))
    ]
    assert answers == [(True, False, False), (False, True, False), (False, False, True)]


def test_ok_names_its_status_and_no_retry() -> None:
    out = PostOutcome.ok(201)
    assert (out.outcome, out.reason, out.http_status) == (Outcome.DELIVERED, "delivered", 201)
    assert (out.retry_in, out.retry_at) == (None, None)


@pytest.mark.parametrize(("delay", "retry_in"), [(30.0, 30.0), (0.0, 0.0), (-5.0, 0.0)])
def test_retry_is_never_in_the_past(delay: float, retry_in: float) -> None:
    out = PostOutcome.retry(delay, 1000.0, "GitHub 503", 503)
    assert (out.retry_in, out.retry_at) == (retry_in, 1000.0 + retry_in)
    assert (out.reason, out.http_status) == ("GitHub 503", 503)


def test_failed_without_an_answer_has_no_status() -> None:
    out = PostOutcome.failed("connection refused")
    assert (out.outcome, out.http_status, out.retry_at) == (Outcome.FAILED, None, None)
