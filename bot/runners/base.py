"""The runner seam: where a pipeline's steps execute.

A ``Runner`` opens one ``Session`` per pipeline. The session owns the pipeline's box (a
container, or a host workspace) for the pipeline's whole life, including after-steps.
Runners know nothing of the store or the forge: they report through the ``Log``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from bot.images import ImageRef
from bot.logs import Log

if TYPE_CHECKING:
    from bot.engine import BoxSnapshot

GUEST_ROOT = "/pipeline"


@dataclass(frozen=True)
class Workspace:
    """Host directories of one pipeline run.

    ``source`` holds the checkout (or the previous pipeline's artifact), ``output`` starts
    empty, ``cache`` persists per repository and branch. ``helper`` is the bot's own
    directory (mode 0700) for what a runner keeps on the host beside a pipeline: the local
    runner's step home and per-step scratch dirs. The bot never writes there through a path
    a step can change, and nothing in it ends up in an image.
    """

    root: Path
    source: Path
    output: Path
    cache: Path
    helper: Path

    @classmethod
    def create(cls, root: Path, cache: Path) -> Workspace:
        ws = cls(root, root / "source", root / "output", cache, root / "helper")
        for path in (ws.source, ws.output, ws.cache, ws.helper):
            path.mkdir(parents=True, exist_ok=True)
        return ws


@dataclass(frozen=True)
class GuestPaths:
    """The paths steps see (``WERCKER_*_DIR``). On the docker runner these are inside the
    container (``/pipeline/...``); on the local runner they are the host paths."""

    pipeline: str
    root: str
    source: str
    output: str
    cache: str


@dataclass(frozen=True)
class Timeouts:
    """Seconds; ``None`` disables the check."""

    command: float | None = 25 * 60
    no_response: float | None = 5 * 60


@dataclass(frozen=True)
class ScriptResult:
    """``exit_code`` is the real status; ``timed_out`` names the timeout that killed the
    step (``"command-timeout"`` / ``"no-response-timeout"``) or is ``None``. ``env`` is the
    environment the script left behind (its exports), for Wercker's env sync."""

    exit_code: int
    timed_out: str | None = None
    env: dict[str, str] = field(default_factory=dict)


class Session(Protocol):
    """One pipeline's execution environment.

    ``run_script`` runs bash (sh where bash is missing) with ``set -e`` in ``cwd`` (a guest
    path). ``env`` and ``secrets`` arrive as environment variables, never spliced into shell
    text; output streams to ``log`` as it comes. ``collect(guest_dir)`` returns a host
    directory holding a copy of (or the same as) that guest directory's contents.
    ``can_commit`` is true where the box itself can become an image: the session is then a
    ``SnapshotSession`` (the docker runner). A session never pushes: the push step chooses
    a pusher. ``close`` is idempotent and safe after a half-done open.
    """

    kind: str
    paths: GuestPaths
    can_commit: bool

    def run_script(
        self,
        code: str,
        *,
        env: dict[str, str],
        secrets: dict[str, str],
        cwd: str,
        timeouts: Timeouts,
        log: Log,
    ) -> ScriptResult: ...

    def collect(self, guest_dir: str) -> Path: ...

    def restart(self, log: Log) -> None:
        """Make the session usable again after a step killed it (before after-steps)."""

    def close(self) -> None: ...


@runtime_checkable
class SnapshotSession(Session, Protocol):
    """A session whose box is a container on a Docker Engine (``can_commit``).

    ``snapshot()`` describes the box container as it stands, for the engine pusher to
    commit and for ``internal/docker-build`` to build next to (``BoxSnapshot``). It changes
    nothing; raises ``InfrastructureError`` when the container is gone.
    """

    def snapshot(self) -> BoxSnapshot: ...


def snapshot_of(session: Session) -> BoxSnapshot | None:
    """``session.snapshot()`` where the session has a box container, else ``None``."""
    if session.can_commit and isinstance(session, SnapshotSession):
        return session.snapshot()
    return None


class Runner(Protocol):
    """Opens sessions. ``kind`` is ``docker``, ``local`` (sandboxed) or ``local-unsafe``.

    ``box`` is the pipeline's box, already resolved and expanded (with its own pull
    credentials in ``box.auth``); ``box_env`` its expanded environment. ``base_path`` is the
    pipeline's ``base-path`` (where the source lives in the guest) or ``None`` for
    ``/pipeline/source``. Raises ``InfrastructureError`` when the environment cannot be set up.
    """

    kind: str

    def open(
        self,
        box: ImageRef | None,
        box_env: dict[str, str],
        workspace: Workspace,
        base_path: str | None,
        log: Log,
    ) -> Session: ...
