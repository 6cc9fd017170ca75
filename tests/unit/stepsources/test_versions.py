"""``bot.stepsources.versions``: the version ranges of ``[steps]`` keys and wercker.yml ids."""

from __future__ import annotations

import pytest

from bot.stepsources.versions import parse_range, satisfies


@pytest.mark.parametrize(
    ("version", "wanted", "ok"),
    [
        ("1.2.3", "^1.2", True), ("2.0.0", "^1.2", False), ("0.3.9", "^0.3", True),
        ("0.4.0", "^0.3", False), ("1.2.9", "~1.2.0", True), ("1.3.0", "~1.2.0", False),
        ("1.9.0", "1", True), ("1.2.3", "1.2.3", True), ("1.2.4", "1.2.3", False),
        ("1.5.0", ">=1.0 <2", True), ("2.0.0", ">=1.0, <2", False), ("*", "^1", True),
        ("3.0.0", "*", True),
    ],
)  # fmt: skip
def test_version_ranges(version: str, wanted: str, ok: bool) -> None:
    assert satisfies(version, wanted) is ok


@pytest.mark.parametrize("text", ["", "*", "x", "latest", "  *  "])
def test_any_version_is_no_checks(text: str) -> None:
    assert parse_range(text) == []


@pytest.mark.parametrize("text", ["^", "1.x", ">=one", "~", "1.2.3.4"])
def test_bad_ranges_raise(text: str) -> None:
    with pytest.raises(ValueError, match="is not a version"):
        parse_range(text)


@pytest.mark.parametrize(
    ("version", "wanted", "ok"),
    [
        ("*", "1.2.3", True),  # no version asked: any source serves it
        ("", "^2", True),
        ("v1.2.3", "^1", True),  # a leading v and a pre-release tail are read
        ("1.2.3-beta", "1.2.3", True),
        ("main", "*", True),  # an unreadable version matches only an any-version range
        ("main", "^1", False),
        ("0.0.3", "^0.0.3", True),
        ("0.0.4", "^0.0.3", False),
        ("1.4.0", "> 1.3 <= 1.4", True),
    ],
)
def test_versions_that_are_not_plain(version: str, wanted: str, ok: bool) -> None:
    assert satisfies(version, wanted) is ok
