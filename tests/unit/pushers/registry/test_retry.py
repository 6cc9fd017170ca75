"""``bot.pushers.registry.retry``: how long the client waits before another try (backoff, or
the registry's ``Retry-After`` as seconds or a date, capped), and how a retry line says so."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime

import pytest

from bot.pushers.registry.retry import RETRY_STATUSES, RetryPolicy, retry_after, seconds, when
from tests.fakes.registry import response
from tests.unit.pushers.registry.conftest import NOW


def clock() -> float:
    return NOW


def test_backoff_grows_by_the_factor_and_stops_at_the_cap() -> None:
    policy = RetryPolicy(backoff=0.5, factor=2.0, max_wait=3.0)
    assert [policy.wait(n, None, clock) for n in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_retry_after_seconds_replace_the_backoff_but_not_the_cap() -> None:
    policy = RetryPolicy(max_wait=60.0)
    assert policy.wait(3, response(503, "u", {"Retry-After": "2"}), clock) == 2.0
    assert policy.wait(0, response(503, "u", {"Retry-After": "600"}), clock) == 60.0


def test_an_answer_without_retry_after_gets_the_backoff() -> None:
    assert RetryPolicy().wait(2, response(429, "u"), clock) == 9.0


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("7", 7.0),
        (" 1.5 ", 1.5),
        ("-3", 0.0),  # a negative delay is no delay
        (format_datetime(datetime.fromtimestamp(NOW + 42, UTC), usegmt=True), 42.0),
        (format_datetime(datetime.fromtimestamp(NOW - 42, UTC), usegmt=True), 0.0),
        ("", None),
        ("soon", None),
    ],
)
def test_retry_after_as_seconds_or_a_date_on_the_clock(value: str, expected: float | None) -> None:
    assert retry_after(response(503, "u", {"Retry-After": value}), clock) == expected


def test_no_retry_after_header_is_none() -> None:
    assert retry_after(response(503, "u"), clock) is None


@pytest.mark.parametrize(
    ("wait", "text"), [(2.0, "2 s"), (0.05, "0.05 s"), (1 / 3, "0.33 s"), (60.0, "60 s")]
)
def test_seconds_as_a_retry_line_shows_them(wait: float, text: str) -> None:
    assert seconds(wait) == text


def test_when_relates_the_wait_to_what_the_registry_asked() -> None:
    assert when(3.0, None, 60.0) == "3 s"
    assert when(2.0, 2.0, 60.0) == "2 s, as its Retry-After asks"
    assert when(60.0, 600.0, 60.0) == (
        "60 s (its Retry-After asked for 600 s; we wait at most 60 s)"
    )
    # asked for less than the backoff (a Retry-After of 0): the wait alone is said
    assert when(1.0, 0.0, 60.0) == "1 s"


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504])
def test_not_now_answers_are_retried(status: int) -> None:
    assert status in RETRY_STATUSES


@pytest.mark.parametrize("status", [400, 401, 403, 404, 405, 409])
def test_refusals_are_not_retried(status: int) -> None:
    assert status not in RETRY_STATUSES
