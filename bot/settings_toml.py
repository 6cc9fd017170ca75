"""Reading the bot's TOML: ``${NAME}`` references expanded from the environment, typed
values (flags, megabytes, string maps, tables) and unknown keys, each refused with a
``ConfigError`` that names the key. ``bot.settings`` builds the settings with them."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from bot.errors import ConfigError

ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def expand(value: Any, env: Mapping[str, str], key: str) -> Any:
    """``value`` with every ``${NAME}`` in its strings (nested tables and lists too)
    replaced from ``env``. An unset NAME is an error naming the key, never an empty string:
    a typo must not become an empty secret."""
    if isinstance(value, str):

        def sub(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in env:
                raise ConfigError(
                    f"${{{name}}} is not set in the environment; export it or edit the value",
                    key,
                )
            return env[name]

        return ENV_REF.sub(sub, value)
    if isinstance(value, dict):
        return {k: expand(v, env, f"{key}.{k}" if key else k) for k, v in value.items()}
    if isinstance(value, list):
        return [expand(v, env, f"{key}[{i}]") for i, v in enumerate(value)]
    return value


def flag(table: Mapping[str, Any], name: str, where: str) -> bool:
    """A boolean: TOML ``true``/``false``, or exactly ``"true"``/``"false"`` (what a
    ``${NAME}`` reference expands to). Anything else is an error, never a guess: a stray
    string must not switch off signature checks or TLS."""
    value = table.get(name, False)
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise ConfigError(f"must be true or false, not {value!r}", f"{where}{name}")


def megabytes(table: Mapping[str, Any], name: str, default: int, where: str, least: int) -> int:
    """A whole number of megabytes, at least ``least`` (``default`` when absent)."""
    value = table.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise ConfigError(f"must be a whole number of megabytes ≥ {least}", f"{where}{name}")
    return value


def subtable(raw: Mapping[str, Any], name: str, where: str) -> dict[str, Any]:
    """The table ``raw[name]`` (empty when absent); anything else there is an error."""
    value = raw.get(name, {})
    if not isinstance(value, dict):
        raise ConfigError("must be a table", f"{where}{name}")
    return value


def str_map(raw: Mapping[str, Any], where: str) -> dict[str, str]:
    """A table of strings (env, secrets): numbers and booleans are written as the shell
    would see them (``true``/``false``); a table or list as a value is an error."""
    out: dict[str, str] = {}
    for k, v in raw.items():
        if isinstance(v, bool):
            out[k] = "true" if v else "false"
        elif isinstance(v, (str, int, float)):
            out[k] = str(v)
        else:
            raise ConfigError("must be a string", f"{where}.{k}")
    return out


def check_keys(table: Mapping[str, Any], allowed: set[str], where: str) -> None:
    """Refuses a key not in ``allowed``, naming it and the keys that are: a misspelt
    setting must never be silently ignored."""
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise ConfigError(
            f"unknown key {unknown[0]!r}; known keys are {', '.join(sorted(allowed))}",
            f"{where}{unknown[0]}",
        )
