"""Dispatch keys (``bot.dispatch.keys``)."""

from __future__ import annotations

import pytest

from bot.dispatch.keys import Key, key_for, parse_key


def test_a_branch_build_is_keyed_by_its_branch_and_a_tag_build_by_its_tag() -> None:
    assert key_for("acme/app", "main", "") == "acme/app@main"
    assert key_for("acme/app", "", "v1.2") == "acme/app@v1.2"


def test_a_key_splits_at_its_first_at_sign_so_branch_names_may_hold_one() -> None:
    key = key_for("acme/app", "feature@2", "")
    assert parse_key(key) == Key("acme/app", "feature@2")
    assert str(parse_key(key)) == key


@pytest.mark.parametrize("bad", ["acme/app", "@main", "acme/app@", ""])
def test_anything_else_is_not_a_key(bad: str) -> None:
    with pytest.raises(ValueError, match="not a dispatch key"):
        parse_key(bad)
