"""``bot.forges.github.outcome``: GitHub's answer to one status post, classified:
``classify()`` and ``retry_after_seconds()`` (github-facts §3.4)."""

from __future__ import annotations

import pytest

from bot.forges.github import Outcome, classify, retry_after_seconds

NOW = 1_800_000_000.0


def test_retry_after_forms() -> None:
    assert retry_after_seconds("120", NOW) == 120.0
    assert retry_after_seconds(None, NOW) is None
    assert retry_after_seconds("soon", NOW) is None
    # HTTP-date form, 30 s after NOW.
    assert retry_after_seconds("Fri, 15 Jan 2027 08:00:30 GMT", 1_800_000_000.0) == 30.0


@pytest.mark.parametrize("status", [200, 201])
def test_2xx_is_delivered(status: int) -> None:
    assert classify(status, {}, "", 1, NOW).delivered


@pytest.mark.parametrize("status", [500, 502, 503, 504, 408])
def test_server_errors_back_off_by_attempt(status: int) -> None:
    out = classify(status, {}, "boom", 3, NOW)
    assert out.outcome is Outcome.RETRY
    assert out.retry_in == 8.0
    assert out.retry_at == NOW + 8.0


def test_503_with_retry_after_honours_it() -> None:
    out = classify(503, {"Retry-After": "42"}, "", 1, NOW)
    assert (out.should_retry, out.retry_in) == (True, 42.0)


@pytest.mark.parametrize("status", [403, 429])
def test_retry_after_wins_for_rate_limits(status: int) -> None:
    headers = {"retry-after": "17", "x-ratelimit-remaining": "0", "x-ratelimit-reset": "1"}
    out = classify(status, headers, "secondary", 1, NOW)
    assert out.retry_in == 17.0


@pytest.mark.parametrize("status", [403, 429])
def test_primary_limit_waits_for_reset(status: int) -> None:
    headers = {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(int(NOW) + 600)}
    out = classify(status, headers, "API rate limit exceeded", 1, NOW)
    assert out.should_retry
    assert out.retry_at == NOW + 601.0  # one second past the reset, never inside the window


def test_reset_in_the_past_still_waits_a_second() -> None:
    headers = {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int(NOW) - 50)}
    assert classify(403, headers, "", 1, NOW).retry_in == 1.0


def test_secondary_limit_without_headers_waits_at_least_a_minute() -> None:
    assert classify(429, {}, "", 1, NOW).retry_in == 60.0
    out = classify(
        403, {"x-ratelimit-remaining": "12"}, "You have exceeded a secondary rate limit", 1, NOW
    )
    assert out.retry_in == 60.0
    assert classify(429, {}, "", 9, NOW).retry_in == 300.0  # backoff beyond the minute


def test_plain_403_is_permanent() -> None:
    out = classify(403, {"x-ratelimit-remaining": "4999"}, "Resource not accessible", 1, NOW)
    assert out.permanent
    assert "Resource not accessible" in out.reason


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (422, "No commit found for SHA: " + "a" * 40),
        (422, "Validation Failed; description is too long (maximum is 140 characters)"),
        (404, "Not Found"),
        (401, "Bad credentials"),
        (400, "Problems parsing JSON"),
    ],
)
def test_client_errors_are_permanent(status: int, message: str) -> None:
    out = classify(status, {}, message, 1, NOW)
    assert out.permanent
    assert out.http_status == status
    assert message in out.reason
    assert out.retry_at is None


def test_old_abuse_wording_counts_as_secondary_limit() -> None:
    out = classify(403, {}, "You have triggered an abuse detection mechanism.", 1, NOW)
    assert out.should_retry and out.retry_in == 60.0
