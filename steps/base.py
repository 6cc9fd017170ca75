"""The step seam: every step type implements ``Step.run(ctx)``.

``STEP_TYPES`` in ``steps/__init__.py`` maps a step id to its implementation; there is no
if-chain anywhere else.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Protocol

from bot.logs import Log
from bot.pushers.base import EngineImagePusher, Pusher
from bot.pushers.model import ImageRef, ImageSpec, PushResult
from bot.runners.base import Abort, Session, Timeouts
from bot.settings import RegistrySettings
from bot.stepsources import StepPackage
from bot.wercker.model import StepSpec


@dataclass(frozen=True)
class BuildFacts:
    """What a step may know about the build: never credentials."""

    repo: str  # owner/name
    branch: str  # "" on a tag push
    git_tag: str  # "" on a branch push
    commit: str
    source_url: str  # repository URL without credentials (for OCI labels)
    run_id: str
    run_url: str
    created: str  # the commit's time, RFC 3339: images built from one commit are reproducible


@dataclass
class StepContext:
    """Everything a step gets. ``env`` is the step's environment (WERCKER_*, repo env, box
    env, values synced from earlier steps); ``secrets`` are kept apart so they can be passed
    to processes but never into image configs; ``lookup`` is ``env`` plus ``secrets`` and is
    what ``$VAR`` in options expands against (respecting ``disable-sync``). ``pusher``
    pushes images assembled from directories (the daemonless pusher); a push of the box
    container or of a built image, and ``internal/docker-build``, go through
    ``engine_pusher`` (both come from the composition root, ``bot.wiring``).
    ``package`` is the step package the plan resolved for a registry step (``None`` for
    the bot's own step types). ``abort`` is the attempt's stop request (``None``: nothing
    stops it from outside); ``timeouts.abort`` is the same object, so a session's script
    is killed when it is set. A step that must not be cut halfway (a push) never looks at
    it: the pipeline checks it between steps."""

    step: StepSpec
    session: Session
    env: dict[str, str]
    secrets: dict[str, str]
    lookup: dict[str, str]
    facts: BuildFacts
    log: Log
    timeouts: Timeouts
    pusher: Pusher[ImageSpec]
    engine_pusher: EngineImagePusher
    registries: dict[str, RegistrySettings] = field(default_factory=dict)
    box: ImageRef | None = None
    built_images: dict[str, str] = field(default_factory=dict)
    package: StepPackage | None = None
    abort: Abort | None = None

    def __post_init__(self) -> None:
        if self.abort is not None and self.timeouts.abort is not self.abort:
            self.timeouts = replace(self.timeouts, abort=self.abort)


@dataclass
class StepOutcome:
    """A finished step. A failed step raises ``StepError`` instead of returning."""

    exit_code: int = 0
    message: str = ""
    images: list[PushResult] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)


class Step(Protocol):
    """Runs one step. Returns on success; raises ``StepError`` (or a subclass) with a
    user-facing message and the exit code on failure; raises ``InfrastructureError`` when the
    bot itself could not run the step."""

    def run(self, ctx: StepContext) -> StepOutcome: ...
