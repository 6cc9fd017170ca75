"""``bot.settings_toml``: ``${NAME}`` expansion and the typed values of the bot's TOML, each
refused with the key named."""

from __future__ import annotations

import pytest

from bot.errors import ConfigError
from bot.settings_toml import check_keys, expand, flag, megabytes, str_map, subtable


def test_expand_reaches_nested_tables_and_lists_and_names_an_unset_variable() -> None:
    raw = {"a": "${X}-${Y}", "t": {"l": ["${X}", 3]}}
    assert expand(raw, {"X": "1", "Y": "2"}, "") == {"a": "1-2", "t": {"l": ["1", 3]}}
    with pytest.raises(ConfigError) as caught:
        expand(raw, {"X": "1"}, "")
    assert caught.value.key == "a" and "${Y} is not set" in str(caught.value)
    with pytest.raises(ConfigError) as caught:
        expand({"t": {"l": ["${Z}"]}}, {}, "")
    assert caught.value.key == "t.l[0]"


@pytest.mark.parametrize(
    ("value", "expected"), [(True, True), (False, False), ("true", True), (" FALSE ", False)]
)
def test_flags_are_booleans_or_their_exact_words(value: object, expected: bool) -> None:
    assert flag({"f": value}, "f", "x.") is expected


@pytest.mark.parametrize("value", ["yes", "1", 1, ""])
def test_anything_else_is_no_flag(value: object) -> None:
    with pytest.raises(ConfigError) as caught:
        flag({"f": value}, "f", "x.")
    assert caught.value.key == "x.f"


def test_megabytes_tables_and_string_maps_refuse_the_wrong_shape() -> None:
    assert megabytes({}, "m", 7, "", 1) == 7
    for bad in (True, 0, 1.5, "3"):
        with pytest.raises(ConfigError, match="≥ 1"):
            megabytes({"m": bad}, "m", 7, "", 1)
    assert subtable({}, "t", "") == {}
    with pytest.raises(ConfigError, match="must be a table"):
        subtable({"t": [1]}, "t", "x.")
    assert str_map({"a": 1, "b": True, "c": "s"}, "env") == {"a": "1", "b": "true", "c": "s"}
    with pytest.raises(ConfigError) as caught:
        str_map({"a": {"n": 1}}, "env")
    assert caught.value.key == "env.a"


def test_an_unknown_key_is_named_with_the_known_ones() -> None:
    check_keys({"a": 1}, {"a", "b"}, "t.")
    with pytest.raises(ConfigError) as caught:
        check_keys({"c": 1}, {"a", "b"}, "t.")
    assert caught.value.key == "t.c" and "known keys are a, b" in str(caught.value)
