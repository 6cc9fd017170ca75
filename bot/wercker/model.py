"""The parsed form of a wercker.yml: plain data with a location on every node.

The parser (``bot.wercker.parse``) produces these; the planner and the steps read them.
Option values are the scalar's text *as written* (``tag: 1.10`` → ``"1.10"``,
``ports: 8080`` → ``"8080"``, ``disable-sync: true`` → ``"true"``); lists of scalars are joined
with commas. Nothing here is expanded: ``$VAR`` expansion happens when a step runs, against
that step's environment (``bot.wercker.expand``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Loc:
    """A place in a file; line and column are 1-based, as editors show them."""

    file: str
    line: int
    col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


@dataclass(frozen=True)
class Problem:
    """One lint finding. ``format()`` gives ``FILE:LINE:COL: error|warning: message``.

    ``pipeline`` names the pipeline the problem lies in (``None``: the file as a whole, e.g.
    the top-level box), so a build can ignore errors in pipelines it does not run
    (``bot.wercker.selection.blocking_problems``).
    """

    loc: Loc
    severity: Severity
    message: str
    hint: str | None = None
    pipeline: str | None = None

    def format(self) -> str:
        text = f"{self.loc}: {self.severity}: {self.message}"
        return f"{text}; {self.hint}" if self.hint else text

    def short(self) -> str:
        """The form used in commit statuses: ``wercker.yml line 12: message``."""
        return f"{self.loc.file} line {self.loc.line}: {self.message}"


@dataclass
class StepSpec:
    """One step as written: ``id`` (``script``, ``internal/docker-push``, ``owner/name@1.0``).

    ``options`` maps option names (already normalised: ``port`` → ``ports`` …) to their text;
    ``option_locs`` gives where each was written. ``name`` is the display name (the ``name``
    option, else the id); ``cwd`` is the ``cwd`` option, relative to the source dir.
    """

    id: str
    loc: Loc
    name: str
    options: dict[str, str] = field(default_factory=dict)
    option_locs: dict[str, Loc] = field(default_factory=dict)
    cwd: str | None = None

    def option(self, key: str, default: str = "") -> str:
        return self.options.get(key, default)


@dataclass
class BoxSpec:
    """The ``box``: an image reference plus its pull options (credentials, env, cmd …).

    ``options`` holds every key of the mapping form other than ``id`` and ``env`` (e.g.
    ``username``, ``password``, ``registry``, ``tag``, ``aws-*``, ``cmd``, ``entrypoint``);
    ``env`` is the box's environment with keys upper-cased, values unexpanded. ``id_loc`` is
    where the image is written (``None``: at ``loc``, as in the string form).
    """

    id: str
    loc: Loc
    options: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    option_locs: dict[str, Loc] = field(default_factory=dict)
    id_loc: Loc | None = None


@dataclass
class PipelineSpec:
    """A pipeline: its steps, after-steps and deploy targets (named step lists)."""

    name: str
    loc: Loc
    steps: list[StepSpec] = field(default_factory=list)
    after_steps: list[StepSpec] = field(default_factory=list)
    targets: dict[str, list[StepSpec]] = field(default_factory=dict)
    box: BoxSpec | None = None
    services: list[BoxSpec] | None = None
    base_path: str | None = None
    docker: bool = False


@dataclass
class WerckerFile:
    """A whole wercker.yml. ``path`` is the file name that was read (``wercker.yml`` or
    ``.wercker.yml``). Timeouts are in minutes, as written; ``None`` means the default."""

    path: str
    pipelines: dict[str, PipelineSpec] = field(default_factory=dict)
    box: BoxSpec | None = None
    services: list[BoxSpec] = field(default_factory=list)
    source_dir: str | None = None
    command_timeout: int | None = None
    no_response_timeout: int | None = None

    def box_for(self, pipeline: PipelineSpec) -> BoxSpec | None:
        """A pipeline's own box replaces the top-level one; they are not merged."""
        return pipeline.box or self.box
