"""``$VAR`` / ``${VAR}`` expansion of step options (behaviour §6, wercker-spec §5.3).

Like Wercker (Go ``os.Expand``): ``$NAME`` takes ASCII letters, digits and ``_``; ``${...}``
takes everything up to ``}`` as the name, so ``${VAR:-x}`` is the (undefined) name ``VAR:-x``.
Unlike Wercker: ``$$`` is a literal ``$``; a ``$`` at the end, before a character that cannot
start a name, or before an unclosed ``{`` is kept as written; an undefined name in a STRICT
option (``schema.is_strict``) raises ``StepConfigError`` instead of silently becoming "".
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from typing import TYPE_CHECKING

from bot.errors import StepConfigError
from bot.wercker import schema
from bot.wercker.model import StepSpec

if TYPE_CHECKING:  # annotations only: the frontend imports nothing below it at run time
    from bot.logs import Log

# A leading digit is a one-character name, as in Go (``$1abc`` is ``$1`` then ``abc``).
_TOKEN = re.compile(r"\$(?:(\$)|\{([^}]+)\}|([A-Za-z_][A-Za-z0-9_]*|[0-9]))")


def expand(
    text: str, lookup: Mapping[str, str], *, option: str, strict: bool
) -> tuple[str, list[str]]:
    """Returns the expanded text and the undefined names, in order of first use.

    With ``strict``, the first undefined name raises ``StepConfigError`` naming it and
    ``option`` (never the value).
    """
    undefined: list[str] = []

    def sub(match: re.Match[str]) -> str:
        if match.group(1):
            return "$"
        name = match.group(2) if match.group(2) is not None else match.group(3)
        if name in lookup:
            return lookup[name]
        if strict:
            raise StepConfigError(
                f"${name} is not defined (used in option '{option}'); set it in the repo's "
                "env/secrets or export it in an earlier step"
            )
        if name not in undefined:
            undefined.append(name)
        return ""

    return _TOKEN.sub(sub, text), undefined


def expand_options(step: StepSpec, lookup: Mapping[str, str], log: Log) -> dict[str, str]:
    """Every option of ``step`` expanded against ``lookup``.

    ``cmd`` and ``entrypoint`` stay as written (Wercker shlex-split them unexpanded). Options
    holding ``NAME=value`` shell words (``env``, ``labels``, ``build-args``) are split first
    and each word expanded, then re-joined with ``shlex.join``, so a value with spaces stays
    one word when the step splits it again. Undefined names in strict options raise
    ``StepConfigError``; elsewhere they expand to "" and ``log`` gets one warning per option.
    """
    out: dict[str, str] = {}
    for option, text in step.options.items():
        if option in schema.UNEXPANDED_OPTIONS:
            out[option] = text
            continue
        strict = schema.is_strict(option)
        if option in schema.KV_OPTIONS:
            value, undefined = _expand_words(text, lookup, option, strict)
        else:
            value, undefined = expand(text, lookup, option=option, strict=strict)
        if undefined:
            names = ", ".join(f"${n}" for n in undefined)
            log.warn(
                f"step '{step.name}': {names} not defined (used in option '{option}'); "
                "expanded to empty"
            )
        out[option] = value
    return out


def _expand_words(
    text: str, lookup: Mapping[str, str], option: str, strict: bool
) -> tuple[str, list[str]]:
    try:
        words = shlex.split(text)
    except ValueError:
        return expand(text, lookup, option=option, strict=strict)  # lint reported it already
    undefined: list[str] = []
    expanded = []
    for word in words:
        value, missing = expand(word, lookup, option=option, strict=strict)
        expanded.append(value)
        undefined.extend(n for n in missing if n not in undefined)
    return shlex.join(expanded), undefined


def disable_sync(step: StepSpec) -> bool:
    """True only for the exact text ``"true"``, as Wercker compared it."""
    return step.options.get("disable-sync") == "true"
