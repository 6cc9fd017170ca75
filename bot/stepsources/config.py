"""The ``[steps]`` table of the bot's config: where registry steps come from.

    [steps]
    "owner/name" = { git = "https://github.com/owner/step-name.git", ref = "v1.2.0" }
    "owner/other@^1.2" = { git = "git@host:owner/other.git", ref = "main", ssh_key_file = "/k" }
    "wercker/npm-install" = { path = "/srv/steps/npm-install" }

A key is ``owner/name`` (``name`` alone means ``wercker/name``), optionally ``@`` and a
version range (``1.2.3``, ``^1.2``, ``~1.2.0``, ``>=1.0 <2``, ``*``); it then serves only the
wercker.yml versions in that range. ``ref`` is a branch, tag or commit (default ``HEAD``, the
remote's default branch). Private repositories use the same credentials as private clones:
user and password in the URL or ``[github] token`` as an HTTP header, ``ssh_key_file`` for
ssh.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bot.errors import ConfigError
from bot.stepsources import parse_step_id
from bot.stepsources.versions import parse_range

_KEYS = {"git", "ref", "path", "ssh_key_file"}


@dataclass(frozen=True)
class StepSource:
    """One ``[steps]`` entry. ``key`` is the id as written in the config (for messages);
    ``id`` is ``owner/name`` lower-cased; ``versions`` the range (``*``: any). Exactly one of
    ``git`` and ``path`` is set."""

    key: str
    id: str
    versions: str = "*"
    git: str | None = None
    ref: str = "HEAD"
    path: Path | None = None
    ssh_key_file: str | None = None

    @property
    def password(self) -> str:
        """A password written into the git URL (a secret: masked wherever it could show)."""
        return urlsplit(self.git).password or "" if self.git else ""


def parse_steps(table: Mapping[str, Any], base_dir: Path) -> tuple[StepSource, ...]:
    """The ``[steps]`` table. Raises ``ConfigError`` naming the key; relative ``path`` is
    taken from ``base_dir``."""
    out: list[StepSource] = []
    for key, entry in table.items():
        where = f"steps.{key!r}"
        parsed = parse_step_id(key)
        if parsed is None:
            raise ConfigError(
                'the key must be a step id: "owner/name" or "owner/name@<version range>"', where
            )
        try:
            parse_range(parsed.version)
        except ValueError as err:
            raise ConfigError(f"bad version range: {err}", where) from None
        if not isinstance(entry, dict):
            raise ConfigError(
                'must be a table: { git = "<url>", ref = "<ref>" } or { path = "<dir>" }', where
            )
        unknown = sorted(set(entry) - _KEYS)
        if unknown:
            raise ConfigError(
                f"unknown key {unknown[0]!r}; known keys are {', '.join(sorted(_KEYS))}",
                f"{where}.{unknown[0]}",
            )
        git, path = entry.get("git"), entry.get("path")
        if (git is None) == (path is None):
            raise ConfigError("give exactly one of git (with ref) and path", where)
        for name in _KEYS:
            if name in entry and (not isinstance(entry[name], str) or not entry[name].strip()):
                raise ConfigError("must be a non-empty string", f"{where}.{name}")
        if path is not None and "ref" in entry:
            raise ConfigError("ref only applies to a git source", f"{where}.ref")
        resolved = None
        if path is not None:
            resolved = Path(path) if Path(path).is_absolute() else base_dir / path
        out.append(
            StepSource(
                key=key,
                id=parsed.key,
                versions=parsed.version,
                git=git,
                ref=str(entry.get("ref", "HEAD")).strip(),
                path=resolved,
                ssh_key_file=entry.get("ssh_key_file"),
            )
        )
    return tuple(out)
