"""``bot.forges.github.headers``: one header looked up whatever its case, as GitHub's docs,
proxies and plain test dicts spell it."""

from __future__ import annotations

from bot.forges.github.headers import header


def test_an_exact_name_wins_over_other_spellings() -> None:
    headers = {"X-GitHub-Event": "push", "x-github-event": "ping"}
    assert header(headers, "X-GitHub-Event") == "push"
    assert header(headers, "x-github-event") == "ping"


def test_any_case_is_found() -> None:
    headers = {"X-Github-Hook-Id": "42", "Content-Type": "application/json"}
    assert header(headers, "X-GitHub-Hook-ID") == "42"
    assert header(headers, "content-type") == "application/json"


def test_a_missing_header_is_none_and_an_empty_one_is_kept() -> None:
    assert header({"X-Other": "1"}, "X-GitHub-Event") is None
    assert header({"x-github-delivery": ""}, "X-GitHub-Delivery") == ""
