"""``bot.forges.github.descriptions``: GitHub's 140-character status description limit
(github-facts §3.1)."""

from __future__ import annotations

from bot.forges.github import truncate_description, utf16_len


def test_short_text_is_unchanged() -> None:
    text = "Pushed acme/app:feature-login (sha256:3f2a…) in 14s"
    assert truncate_description(text) == text


def test_exactly_140_is_unchanged() -> None:
    assert truncate_description("x" * 140) == "x" * 140


def test_141_is_cut_to_139_plus_ellipsis() -> None:
    out = truncate_description("x" * 141)
    assert out == "x" * 139 + "…"
    assert utf16_len(out) == 140


def test_astral_characters_count_as_two_units_and_are_never_split() -> None:
    # 🚀 is one code point but two UTF-16 units: 80 of them are 160 units.
    out = truncate_description("🚀" * 80)
    assert utf16_len(out) <= 140
    assert out == "🚀" * 69 + "…"
    out = truncate_description("a" + "🚀" * 80)
    assert out == "a" + "🚀" * 69 + "…"  # 139 units would split a pair: one unit is left unused
    assert utf16_len(out) == 140


def test_line_breaks_become_spaces() -> None:
    assert truncate_description("Step 'unit tests' failed\n  exit 2\r\n") == (
        "Step 'unit tests' failed exit 2"
    )


def test_custom_limit() -> None:
    assert truncate_description("abcdef", limit=4) == "abc…"
