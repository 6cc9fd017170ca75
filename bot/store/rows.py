"""The plain data the store takes and returns: what intake stores (``NewPush``), what the
queue hands out (``Claim``), and one frozen dataclass for every row a read returns.

Nothing here touches a database; ``from_row`` builds a row from a SQLAlchemy result row,
whose columns are named as the fields are. ``to_json`` gives the JSON shape the API serves.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Self

ZERO_SHA = "0" * 40
_SHA = re.compile(r"^[0-9a-f]{40}$")


def is_full_sha(sha: str) -> bool:
    """A full 40-hex commit id that names a commit (not the all-zero "no commit")."""
    return bool(_SHA.match(sha)) and sha != ZERO_SHA


# -- what intake takes and answers ------------------------------------------------------------


@dataclass(frozen=True)
class NewPush:
    """What the intake stores for a push. ``pipelines`` are the configured pipelines that
    will be tried. It holds facts of the push only: what GitHub sees is the reporter's."""

    hook_id: str
    delivery_id: str
    repo: str
    ref: str
    branch: str
    git_tag: str
    sha: str
    before_sha: str
    message: str
    pusher: str
    html_url: str
    pipelines: Sequence[str]
    commits: Sequence[str] = ()
    """The ids of the payload's ``commits``: all reachable from ``sha``."""
    forced: bool = False
    """A force push: ``before`` is then not an ancestor of ``sha``."""

    @property
    def proven_ancestors(self) -> set[str]:
        """Commits this payload proves to be strict ancestors of ``sha`` (no clone needed):
        its ``before`` unless the push was forced or created the branch, and its
        ``commits``. Only full 40-hex shas count."""
        found = set(self.commits)
        if not self.forced:
            found.add(self.before_sha)
        return {s for s in found if is_full_sha(s) and s != self.sha}


@dataclass(frozen=True)
class Intake:
    """The intake's answer: a stored build (``build_id``, ``attempt``) or ``ignored``."""

    build_id: int | None
    attempt: int | None
    ignored: str | None = None


@dataclass(frozen=True)
class StatusRow:
    """One commit status in the outbox, as the reporter decided it."""

    repo: str
    sha: str
    context: str
    state: str
    description: str
    target_url: str


# -- rows the reads return ----------------------------------------------------------------------


class _Row:
    """Shared by the rows: built from a result row, served as JSON."""

    @classmethod
    def from_row(cls, row: Any) -> Self:
        """From a SQLAlchemy row whose columns are this class's fields (no more)."""
        return cls(**dict(row._mapping))

    def to_json(self) -> dict[str, Any]:
        """The row as the API serves it: a dict of its fields, nested rows as dicts and
        sequences as lists."""
        data: dict[str, Any] = json.loads(json.dumps(dataclasses.asdict(self)))  # type: ignore[call-overload]
        return data


@dataclass(frozen=True)
class BuildRow(_Row):
    """One stored build (one push), as the worker runs it."""

    id: int
    repo: str
    ref: str
    branch: str
    git_tag: str
    sha: str
    before_sha: str
    message: str
    pusher: str
    html_url: str
    pipelines: tuple[str, ...]
    """The pipelines planned at intake: their contexts went pending then."""
    created_at: float

    @classmethod
    def from_row(cls, row: Any) -> Self:
        values = dict(row._mapping)
        values["pipelines"] = tuple(json.loads(str(values["pipelines"] or "[]")))
        return cls(**values)


@dataclass(frozen=True)
class AttemptRow(_Row):
    """One run of a build. ``explicit``: a user's redelivery; ``worker``: host:pid:thread."""

    id: int
    build_id: int
    number: int
    state: str
    description: str
    explicit: bool
    runner: str
    worker: str
    heartbeat_at: float | None
    created_at: float
    started_at: float | None
    finished_at: float | None


@dataclass(frozen=True)
class BuildSummary(BuildRow):
    """A build as the list of builds shows it: with its newest attempt, if any."""

    attempt: AttemptRow | None = None

    @classmethod
    def of(cls, build: BuildRow, attempt: AttemptRow | None) -> BuildSummary:
        return cls(**_fields(build), attempt=attempt)


@dataclass(frozen=True)
class StepRow(_Row):
    """One step of a pipeline; ``phase`` is ``main`` or ``after``."""

    id: int
    pipeline_id: int
    position: int
    phase: str
    step_id: str
    name: str
    state: str
    exit_code: int | None
    message: str
    started_at: float | None
    finished_at: float | None


@dataclass(frozen=True)
class PipelineRow(_Row):
    """One pipeline of an attempt, with its steps (main ones first, each phase in order)."""

    id: int
    attempt_id: int
    position: int
    name: str
    state: str
    description: str
    started_at: float | None
    finished_at: float | None
    steps: tuple[StepRow, ...] = ()


@dataclass(frozen=True)
class ImageRow(_Row):
    """An image an attempt pushed. ``tags`` are comma-joined, as stored."""

    id: int
    attempt_id: int
    pipeline: str
    registry: str
    repository: str
    tags: str
    digest: str
    created_at: float


@dataclass(frozen=True)
class AttemptDetail(AttemptRow):
    """An attempt with its pipelines (in order) and the images it pushed."""

    pipelines: tuple[PipelineRow, ...] = ()
    images: tuple[ImageRow, ...] = ()

    @classmethod
    def of(
        cls,
        attempt: AttemptRow,
        pipelines: Sequence[PipelineRow],
        images: Sequence[ImageRow],
    ) -> AttemptDetail:
        return cls(**_fields(attempt), pipelines=tuple(pipelines), images=tuple(images))


@dataclass(frozen=True)
class BuildDetail(BuildRow):
    """A build with all its attempts, oldest first."""

    attempts: tuple[AttemptDetail, ...] = ()

    @classmethod
    def of(cls, build: BuildRow, attempts: Sequence[AttemptDetail]) -> BuildDetail:
        return cls(**_fields(build), attempts=tuple(attempts))


@dataclass(frozen=True)
class OutboxRow(_Row):
    """One stored commit status and its delivery: ``outcome`` is queued, delivered,
    superseded or failed; ``tries`` counts the posts to the forge."""

    id: int
    repo: str
    sha: str
    context: str
    state: str
    description: str
    target_url: str
    created_at: float
    tries: int
    next_try_at: float
    locked_until: float
    delivered_at: float | None
    outcome: str
    last_error: str


@dataclass(frozen=True)
class QueuedBuild:
    """A queued attempt of a branch, as the worker sees it when ordering by ancestry."""

    attempt_id: int
    build_id: int
    sha: str
    explicit: bool


@dataclass(frozen=True)
class Claim:
    """An attempt this worker now owns (marked running), with its build."""

    attempt_id: int
    attempt_number: int
    explicit: bool
    build: BuildRow


@dataclass(frozen=True)
class LogPage:
    """One bounded page of a log: ``text``, the cursor after it, and whether more follows."""

    text: str
    next_id: int
    more: bool


@dataclass(frozen=True)
class LogTail:
    """The end of a log: ``text``, the newest row's id, and whether it is the whole log."""

    text: str
    last_id: int
    complete: bool


def _fields(row: Any) -> dict[str, Any]:
    """The fields of a row, shallow (nested rows stay rows)."""
    return {f.name: getattr(row, f.name) for f in dataclasses.fields(row)}
