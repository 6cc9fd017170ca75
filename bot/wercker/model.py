"""The parsed form of a wercker.yml: plain data with a location on every node.

The parser (``bot.wercker.parse``) produces these; the planner and the steps read them.
Option values are the scalar's text *as written* (``tag: 1.10`` → ``"1.10"``,
``ports: 8080`` → ``"8080"``, ``disable-sync: true`` → ``"true"``); lists of scalars are joined
with commas. Nothing here is expanded: ``$VAR`` expansion happens when a step runs, against
that step's environment (``bot.wercker.expand``).

No ``dataclasses`` here: ``wercker-bot check`` imports this module, editors run it on every
save, and ``dataclasses`` (with the ``inspect``, ``ast`` and ``dis`` it imports) plus building
each class cost it more than 10 ms per run. Values never changed once made (``Loc``,
``Problem``) are ``NamedTuple`` classes (immutable, hashable, compared field by field). The
specs are small ``__slots__`` classes (``_Record``) with a typed ``__init__``: the readers
(``bot.wercker.nodes``, ``bot.wercker.stepnodes``) fill them in field by field as they meet the
keys, and their dict and list fields need a fresh value per instance (a ``NamedTuple`` default
would be shared). They keep what the dataclasses gave: keyword construction, equality by field
within one type, unhashable, the same ``repr``.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal, NamedTuple

Severity = Literal["error", "warning"]


class Loc(NamedTuple):
    """A place in a file; line and column are 1-based, as editors show them."""

    file: str
    line: int
    col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


class Problem(NamedTuple):
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


class _Record:
    """A mutable record whose ``_fields`` name its fields in constructor order (also its
    ``__slots__``). Equal to a record of the same type with equal fields, never to another
    type; unhashable, as it may change."""

    _fields: ClassVar[tuple[str, ...]] = ()
    __slots__ = ()
    __hash__ = None  # type: ignore[assignment]  # mutable: as an eq=True dataclass

    def _values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in self._fields)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        assert isinstance(other, _Record)
        return self._values() == other._values()

    def __repr__(self) -> str:
        values = zip(self._fields, self._values(), strict=True)
        return f"{type(self).__name__}({', '.join(f'{n}={v!r}' for n, v in values)})"


class StepSpec(_Record):
    """One step as written: ``id`` (``script``, ``internal/docker-push``, ``owner/name@1.0``).

    ``options`` maps option names (already normalised: ``port`` → ``ports`` …) to their text;
    ``option_locs`` gives where each was written. ``name`` is the display name (the ``name``
    option, else the id); ``cwd`` is the ``cwd`` option, relative to the source dir.
    """

    _fields = ("id", "loc", "name", "options", "option_locs", "cwd")
    __slots__ = _fields

    def __init__(
        self,
        id: str,
        loc: Loc,
        name: str,
        options: dict[str, str] | None = None,
        option_locs: dict[str, Loc] | None = None,
        cwd: str | None = None,
    ) -> None:
        self.id = id
        self.loc = loc
        self.name = name
        self.options: dict[str, str] = {} if options is None else options
        self.option_locs: dict[str, Loc] = {} if option_locs is None else option_locs
        self.cwd = cwd

    def option(self, key: str, default: str = "") -> str:
        return self.options.get(key, default)


class BoxSpec(_Record):
    """The ``box``: an image reference plus its pull options (credentials, env, cmd …).

    ``options`` holds every key of the mapping form other than ``id`` and ``env`` (e.g.
    ``username``, ``password``, ``registry``, ``tag``, ``aws-*``, ``cmd``, ``entrypoint``);
    ``env`` is the box's environment with keys upper-cased, values unexpanded. ``id_loc`` is
    where the image is written (``None``: at ``loc``, as in the string form).
    """

    _fields = ("id", "loc", "options", "env", "option_locs", "id_loc")
    __slots__ = _fields

    def __init__(
        self,
        id: str,
        loc: Loc,
        options: dict[str, str] | None = None,
        env: dict[str, str] | None = None,
        option_locs: dict[str, Loc] | None = None,
        id_loc: Loc | None = None,
    ) -> None:
        self.id = id
        self.loc = loc
        self.options: dict[str, str] = {} if options is None else options
        self.env: dict[str, str] = {} if env is None else env
        self.option_locs: dict[str, Loc] = {} if option_locs is None else option_locs
        self.id_loc = id_loc

    def with_options(self, options: dict[str, str]) -> BoxSpec:
        """A copy with ``options`` instead of this box's; the other fields are shared."""
        return BoxSpec(self.id, self.loc, options, self.env, self.option_locs, self.id_loc)


class PipelineSpec(_Record):
    """A pipeline: its steps, after-steps and deploy targets (named step lists)."""

    _fields = (
        "name",
        "loc",
        "steps",
        "after_steps",
        "targets",
        "box",
        "services",
        "base_path",
        "docker",
    )
    __slots__ = _fields

    def __init__(
        self,
        name: str,
        loc: Loc,
        steps: list[StepSpec] | None = None,
        after_steps: list[StepSpec] | None = None,
        targets: dict[str, list[StepSpec]] | None = None,
        box: BoxSpec | None = None,
        services: list[BoxSpec] | None = None,
        base_path: str | None = None,
        docker: bool = False,
    ) -> None:
        self.name = name
        self.loc = loc
        self.steps: list[StepSpec] = [] if steps is None else steps
        self.after_steps: list[StepSpec] = [] if after_steps is None else after_steps
        self.targets: dict[str, list[StepSpec]] = {} if targets is None else targets
        self.box = box
        self.services = services  # None: the file's services; []: none
        self.base_path = base_path
        self.docker = docker


class WerckerFile(_Record):
    """A whole wercker.yml. ``path`` is the file name that was read (``wercker.yml`` or
    ``.wercker.yml``). Timeouts are in minutes, as written; ``None`` means the default."""

    _fields = (
        "path",
        "pipelines",
        "box",
        "services",
        "source_dir",
        "command_timeout",
        "no_response_timeout",
    )
    __slots__ = _fields

    def __init__(
        self,
        path: str,
        pipelines: dict[str, PipelineSpec] | None = None,
        box: BoxSpec | None = None,
        services: list[BoxSpec] | None = None,
        source_dir: str | None = None,
        command_timeout: int | None = None,
        no_response_timeout: int | None = None,
    ) -> None:
        self.path = path
        self.pipelines: dict[str, PipelineSpec] = {} if pipelines is None else pipelines
        self.box = box
        self.services: list[BoxSpec] = [] if services is None else services
        self.source_dir = source_dir
        self.command_timeout = command_timeout
        self.no_response_timeout = no_response_timeout

    def box_for(self, pipeline: PipelineSpec) -> BoxSpec | None:
        """A pipeline's own box replaces the top-level one; they are not merged."""
        return pipeline.box or self.box
