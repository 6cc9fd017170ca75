"""Commit status descriptions: GitHub answers 422 above 140 characters (github-facts §3.1)."""

from __future__ import annotations

import re

LIMIT = 140
ELLIPSIS = "…"
_LINE_BREAKS = re.compile(r"\s*[\r\n]+\s*")


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units: never less than the code-point count, so a text that fits
    by this measure fits whichever way GitHub counts (the unit is not documented)."""
    return len(text.encode("utf-16-le")) // 2


def truncate_description(text: str, limit: int = LIMIT) -> str:
    """``text`` on one line, cut to at most ``limit`` UTF-16 units with a trailing ``…``.

    Line breaks become single spaces: GitHub shows the description on one line anyway. A cut
    never splits a surrogate pair, because it walks whole code points.
    """
    text = _LINE_BREAKS.sub(" ", text).strip()
    if utf16_len(text) <= limit:
        return text
    budget = limit - utf16_len(ELLIPSIS)
    used = 0
    cut = 0
    for index, char in enumerate(text):
        width = 2 if ord(char) > 0xFFFF else 1
        if used + width > budget:
            cut = index
            break
        used += width
    return text[:cut].rstrip() + ELLIPSIS
