"""Version ranges of ``[steps]`` keys, matched against the versions wercker.yml asks for.

Wercker sent ``@version`` verbatim to its registry and the corpus only uses exact versions
(wercker-steps.md §1.2); a ``[steps]`` key may name a range so one source serves several.
Grammar (npm-like, a subset): ``*``, ``1.2.3``, ``1.2`` / ``1`` (any patch / minor),
``^1.2.3``, ``~1.2.3``, and comparators ``>=1.0``, ``>1``, ``<2``, ``<=1.4``, ``=1.2.3``
joined by spaces or commas (all must hold).
"""

from __future__ import annotations

import re
from collections.abc import Callable

_VERSION = re.compile(r"v?(\d+)(?:\.(\d+))?(?:\.(\d+))?(?:[-+].*)?")
_CMP = re.compile(r"(>=|<=|>|<|=|\^|~)?\s*(.+)")

Version = tuple[int, int, int]
Check = Callable[[Version], bool]


def _version(text: str) -> tuple[Version, int]:
    """``(version, how many parts were written)``; raises ``ValueError``."""
    match = _VERSION.fullmatch(text.strip())
    if not match:
        raise ValueError(f"{text!r} is not a version")
    parts = [int(p) if p is not None else 0 for p in match.groups()]
    written = sum(1 for p in match.groups() if p is not None)
    return (parts[0], parts[1], parts[2]), written


def _term(text: str) -> Check:
    match = _CMP.fullmatch(text)
    if match is None:
        raise ValueError(f"{text!r} is not a version range")
    op, rest = match.group(1) or "", match.group(2)
    low, written = _version(rest)
    if op in (">=", ">", "<", "<="):
        cmp: dict[str, Check] = {
            ">=": lambda v: v >= low, ">": lambda v: v > low,
            "<": lambda v: v < low, "<=": lambda v: v <= low,
        }  # fmt: skip
        return cmp[op]
    if op == "^":
        caret = _next(low, 0 if low[0] else (1 if low[1] else 2))
        return lambda v: low <= v < caret
    if op == "~" or (not op and written < 3):
        upper = _next(low, 0 if written == 1 else 1)  # ~1 and 1: any 1.x; ~1.2, 1.2: any 1.2.x
        return lambda v: low <= v < upper
    return lambda v: v == low


def _next(version: Version, index: int) -> Version:
    parts = list(version)
    parts[index] += 1
    for i in range(index + 1, 3):
        parts[i] = 0
    return (parts[0], parts[1], parts[2])


def parse_range(text: str) -> list[Check]:
    """The checks of a range (empty for ``*``); raises ``ValueError`` for bad text."""
    text = text.strip()
    if text in ("", "*", "x", "latest"):
        return []
    return [_term(t) for t in re.split(r"[\s,]+", re.sub(r"(>=|<=|>|<|=)\s+", r"\1", text)) if t]


def satisfies(version: str, range_text: str) -> bool:
    """Whether a wercker.yml version (``*`` or exact) falls in ``range_text``. ``*`` asked
    for matches every range; a version that does not parse matches only ``*`` ranges or the
    same text."""
    checks = parse_range(range_text)
    if version in ("*", "") or not checks:
        return True
    try:
        wanted, _ = _version(version)
    except ValueError:
        return version.strip() == range_text.strip()
    return all(check(wanted) for check in checks)
