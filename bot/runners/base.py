"""The runner seam: where a pipeline's steps execute.

A ``Runner`` opens one ``Session`` per pipeline. The session owns the pipeline's box (a
container, or a host workspace) for the pipeline's whole life, including after-steps.
Runners know nothing of the store or the forge: they report through the ``Log``.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
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
class ServiceBox:
    """A container started next to the box: a wercker.yml service (``Plan``) or an
    ``internal/docker-run``. ``name`` is how the box reaches it (link variables
    ``<NAME>_PORT_<port>_TCP_ADDR``…, and a host name); ``image`` carries its own pull
    credentials; ``env`` (expanded) is the container's; ``cmd``/``entrypoint`` are argv
    lists (``None``: the image's)."""

    name: str
    image: ImageRef
    env: Mapping[str, str] = field(default_factory=dict)
    cmd: tuple[str, ...] | None = None
    entrypoint: tuple[str, ...] | None = None


ABORTED = "aborted"
"""``ScriptResult.timed_out`` of a step its attempt's ``Abort`` stopped."""


class Abort:
    """The request to stop one attempt from outside it (a worker restart today, a user's
    cancel later). Set once, from any thread; the first ``set`` wins.

    Whoever runs the attempt watches it at boundaries (before each pipeline and each step:
    ``bot.build``, ``bot.pipeline``) and, through ``Timeouts.abort``, inside a running
    script step: both runners treat it like a timeout and kill the step (the local runner its
    process group, the docker runner every process in the box), reporting ``ABORTED``. A
    push is never watched inside: it only ever stops between steps. ``requeue`` says whether
    the attempt is to run again as the next attempt of its build (a restart) or just end."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._lock = threading.Lock()
        self.reason = ""
        self.requeue = False

    def set(self, reason: str, *, requeue: bool = False) -> None:
        with self._lock:
            if self._event.is_set():
                return
            self.reason, self.requeue = reason, requeue
            self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()


@dataclass(frozen=True)
class Timeouts:
    """Seconds; ``None`` disables the check. ``abort``, when given and set, stops the step
    like a timeout (``ABORTED``); ``None``: nothing stops it from outside."""

    command: float | None = 25 * 60
    no_response: float | None = 5 * 60
    abort: Abort | None = field(default=None, compare=False)


@dataclass(frozen=True)
class ScriptResult:
    """``exit_code`` is the real status; ``timed_out`` names the timeout that killed the
    step (``"command-timeout"`` / ``"no-response-timeout"``, or ``ABORTED`` when its
    attempt's ``Abort`` stopped it) or is ``None``. ``env`` is the
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

    def put_dir(self, source: Path, name: str) -> str:
        """Copies the host directory ``source`` — a directory only the bot or the operator
        writes — into the guest as ``<pipeline dir>/<name>`` (docker) or into the step home
        (local), and returns the guest path. ``name`` is one plain path component, fresh
        for this pipeline. Links are copied as links and never followed; a ``run.sh`` that
        is a link is refused; the copy is bounded in size and file count
        (``bot.runners.staging``). Raises ``StepConfigError`` for what the directory holds,
        ``InfrastructureError`` when the box cannot take it."""
        ...

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


@runtime_checkable
class ServiceRunner(Runner, Protocol):
    """A runner that starts ``services`` (``ServiceBox``) next to the box before the first
    step, and stops and removes them when the session closes (the docker runner).
    ``runs_services`` is always true; a runner without it gets no services (the plan's lint
    stops such a build before it runs)."""

    runs_services: bool

    def open(
        self,
        box: ImageRef | None,
        box_env: dict[str, str],
        workspace: Workspace,
        base_path: str | None,
        log: Log,
        *,
        services: Sequence[ServiceBox] = (),
    ) -> Session: ...


@runtime_checkable
class ContainerSession(Session, Protocol):
    """A session that can start containers next to its box mid-pipeline
    (``internal/docker-run``) and stop them (``internal/docker-kill``); whatever it started
    is removed when it closes. ``run_container`` returns the link variables now in every
    later step's environment; ``kill_container`` says whether ``name`` was running."""

    def run_container(self, service: ServiceBox, log: Log) -> dict[str, str]: ...

    def kill_container(self, name: str, log: Log) -> bool: ...
