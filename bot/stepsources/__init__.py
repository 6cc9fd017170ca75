"""Step packages and where they come from (issue 10): what a registry step id of a
wercker.yml resolves to, once, at plan time.

A step package is a directory holding ``step.yml`` (generation 2) or ``wercker-step.yml``
(generation 1) and ``run.sh`` (wercker-steps.md §1). ``bot.stepsources.resolve.StepSources``
finds it: a configured ``[steps]`` source (a git repository fetched and pinned by
``bot.stepsources.gitcache``, or a local directory), else the built-in library
(``steps/library/<name>``, id ``wercker/<name>``). The plan carries the ``StepPackage``;
``steps.package`` stages and runs it.

This module holds only the plain values (no git, no I/O), so the executor and the settings
can name them cheaply. They are ``NamedTuple`` classes, not dataclasses: ``wercker-bot check``
imports this module (``is_built_in``) on every save in editors, and ``dataclasses`` would add
the ``inspect``/``ast`` imports and the class building to each run (``bench/check.py``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import NamedTuple

__all__ = ["Property", "StepId", "StepPackage", "parse_step_id"]

_PART = re.compile(r"[A-Za-z0-9_.][A-Za-z0-9_.-]*")


class StepId(NamedTuple):
    """A registry step id as Wercker read it (wercker-steps.md §1.3): ``owner`` defaults to
    ``wercker``, ``version`` to ``*`` (any)."""

    owner: str
    name: str
    version: str = "*"

    @property
    def key(self) -> str:
        """``owner/name``, without the version: what ``[steps]`` keys and the library use."""
        return f"{self.owner}/{self.name}"

    def __str__(self) -> str:
        return self.key if self.version == "*" else f"{self.key}@{self.version}"


LIBRARY = Path(__file__).resolve().parents[2] / "steps" / "library"
"""The built-in step library shipped with the bot: ``<name>/`` is ``wercker/<name>``."""

SERVES_ANY_OWNER: dict[str, str] = {"pretty-slack-notify": "slack-notifier"}
"""Well-known steps of other owners that a built-in step serves, by name: the library's
``slack-notifier`` takes ``pretty-slack-notify``'s options (several owners published one;
the corpus uses three). The id as written still names the options' variables."""


def built_in_dir(step: StepId, library: Path = LIBRARY) -> Path | None:
    """The built-in package directory serving ``step`` (``wercker/<name>``, or a name in
    ``SERVES_ANY_OWNER`` of any owner), or ``None``."""
    alias = SERVES_ANY_OWNER.get(step.name)
    if step.owner != "wercker" and alias is None:
        return None
    directory = library / (alias or step.name)
    return directory if directory.is_dir() else None


def is_built_in(text: str) -> bool:
    """Whether the wercker.yml step id ``text`` is served by the built-in library. Light:
    ``wercker-bot check`` asks it without loading the resolver (GitPython)."""
    step = parse_step_id(text)
    return step is not None and built_in_dir(step) is not None


def parse_step_id(text: str) -> StepId | None:
    """``npm-install``, ``wercker/npm-install``, ``owner/name@1.2.3`` → ``StepId``; ``None``
    for text that is no step id (spaces, empty parts, more than one ``/``). Owner and name
    are lower-cased: the registry matched them case-insensitively."""
    text = text.strip()
    if not text or any(c.isspace() for c in text):
        return None
    owner, slash, rest = text.partition("/")
    if not slash:
        owner, rest = "wercker", text
    name, at, version = rest.partition("@")
    if not _PART.fullmatch(owner) or not _PART.fullmatch(name) or (at and not version):
        return None
    return StepId(owner.lower(), name.lower(), version if at else "*")


class Property(NamedTuple):
    """A property a package declares: its name and its default as the raw YAML text
    (``default: true`` is ``"true"``, wercker-steps.md §1.1); ``""`` when it has none."""

    name: str
    default: str = ""


class StepPackage(NamedTuple):
    """A resolved step package. ``directory`` is a host directory only the bot writes (a
    pinned git checkout, the built-in library) or the operator's own ``path``; ``origin``
    says where it came from (``built-in``, ``git <url> <ref>``, ``path <dir>``) and
    ``commit`` the pinned commit of a git source. ``manifest`` names the metadata file read
    (``None``: none, or unreadable: run with no defaults, as Wercker did)."""

    id: StepId
    directory: Path
    origin: str
    commit: str | None
    version: str
    properties: tuple[Property, ...] = ()
    manifest: str | None = None
    warnings: tuple[str, ...] = ()

    def describe(self) -> str:
        """One log line: which step came from where, at which commit."""
        at = f" at {self.commit}" if self.commit else ""
        version = f" version {self.version}" if self.version else ""
        return f"{self.id.key}{version} from {self.origin}{at}"
