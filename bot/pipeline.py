"""Runs one compiled pipeline (``bot.plan.PlannedPipeline``): open a session on the runner,
run its steps, then its after-steps.

The executor knows nothing of the store or the forge: it reports through a ``Tracer``. It
never parses, lints or chooses: what runs, in which box, with which timeouts, was decided by
``bot.plan.compile_plan``.
"""

from __future__ import annotations

import logging
import os
import shutil
import stat
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from bot.dispatch.base import AttemptFenced
from bot.environment import SHELL_OWN, pipeline_env, step_env
from bot.errors import InfrastructureError, StepError, WerckerBotError
from bot.logs import Log
from bot.models import Result
from bot.plan import PlannedPipeline
from bot.pushers.base import EngineImagePusher, Pusher
from bot.pushers.model import ImageSpec, PushResult
from bot.runners.base import Abort, Runner, ServiceRunner, Session, Workspace
from bot.settings import RegistrySettings
from bot.wercker.expand import disable_sync
from bot.wercker.model import StepSpec
from steps import PACKAGE_STEP, STEP_TYPES
from steps.base import BuildFacts, StepContext, StepOutcome

logger = logging.getLogger(__name__)


class Tracer(Protocol):
    """Receives progress of a pipeline run (the store implements it for real builds)."""

    def step_started(self, phase: str, position: int, step: StepSpec) -> object: ...

    def step_finished(
        self, token: object, state: Result, exit_code: int | None, message: str
    ) -> None: ...

    def image_pushed(self, result: PushResult) -> None: ...


@dataclass
class PipelineRun:
    """A finished pipeline. ``artifact`` is the host dir the next pipeline starts from.
    ``stopped``: its attempt was aborted before all of it was done (a step was killed, or
    steps, after-steps included, were left out); it did not pass, or only its after-steps
    were left out."""

    name: str
    state: Result
    description: str
    images: list[PushResult] = field(default_factory=list)
    artifact: Path | None = None
    seconds: float = 0.0
    stopped: bool = False


@dataclass
class RunInputs:
    """What every pipeline of an attempt shares (what to run comes from the ``Plan``).
    ``abort`` is the attempt's stop request (``bot.runners.base.Abort``; ``None`` for
    ``wercker-bot run``)."""

    facts: BuildFacts
    env: Mapping[str, str]
    secrets: Mapping[str, str]
    registries: dict[str, RegistrySettings]
    pusher: Pusher[ImageSpec]
    engine_pusher: EngineImagePusher
    runner: Runner
    cache_dir: Path
    log: Log
    abort: Abort | None = None


def run_pipeline(
    planned: PlannedPipeline,
    *,
    source: Path,
    workdir: Path,
    inputs: RunInputs,
    tracer: Tracer,
) -> PipelineRun:
    """Runs the compiled pipeline ``planned`` starting from a copy of ``source``. Never
    raises for step failures: they become the run's state. Raises ``WerckerBotError`` only
    when the pipeline could not be set up at all (box pull, runner).

    When the attempt's ``inputs.abort`` is set, the running script step is killed (a push
    finishes: it is only stopped between steps), the steps left are recorded skipped and
    the run ends ``errored`` with the abort's reason. After-steps are skipped too: they
    report an outcome (``WERCKER_RESULT``) to the outside world, and a stopped attempt has
    none yet; when it is re-queued, the next attempt's after-steps report the real one. A
    restart must also be over within the few seconds the platform leaves before SIGKILL."""
    log = inputs.log
    started = time.monotonic()
    ws = Workspace.create(workdir, inputs.cache_dir)
    _copy_source(source, ws.source)
    box = planned.box
    box_env = dict(box.env) if box is not None else {}
    if box is not None:
        log.info(f"box: {box.image}")
    session = _open(inputs.runner, planned, box_env, ws, log)
    try:
        env = pipeline_env(
            inputs.facts,
            planned.name,
            session.paths,
            source_dir=planned.source_dir,
            deploy=planned.deploy,
            deploy_target=planned.deploy_target,
        )
        env.update(box_env)
        env.update(inputs.env)
        runner = _StepRunner(planned, session, env, inputs, tracer)
        failure = _run_main(runner)
        if planned.after_steps and runner.stopped():
            for position, step in enumerate(planned.after_steps):
                runner.skip_stopped("after", position, step)
        elif planned.after_steps:
            _run_after(runner, failure)
        seconds = time.monotonic() - started
        if failure is not None:
            _, message, state = failure
            return PipelineRun(
                planned.name, state, message, runner.images, None, seconds, runner.cut
            )
        artifact = _artifact(session, ws, log)
        return PipelineRun(
            planned.name, Result.PASSED, _passed(runner.images, seconds), runner.images,
            artifact, seconds, runner.cut,
        )  # fmt: skip
    finally:
        try:
            session.close()
        except WerckerBotError as err:
            log.warn(f"cleanup: {err}")


@dataclass(frozen=True)
class _NotPassed:
    """A step that did not pass: its state, exit code and message; ``log_line`` replaces
    the usual "errored" line in the build log."""

    state: Result
    exit_code: int | None
    message: str
    log_line: str = ""


_Failure = tuple[StepSpec, str, Result]
"""The step that did not pass, its message and its state."""


def _run_main(runner: _StepRunner) -> _Failure | None:
    """Runs the main steps until one does not pass or the attempt is aborted; the rest are
    recorded as skipped."""
    failure: _Failure | None = None
    for position, step in enumerate(runner.planned.steps):
        stopped = runner.stopped()
        if stopped is not None:
            runner.skip_stopped("main", position, step)
            failure = failure or (step, stopped, Result.ERRORED)
            continue
        if failure is not None:
            runner.skip("main", position, step, "skipped: an earlier step failed")
            continue
        state, message = runner.run("main", position, step)
        if state is not Result.PASSED:
            failure = (step, message, state)
    return failure


def _run_after(runner: _StepRunner, failure: _Failure | None) -> None:
    """Runs the after-steps with Wercker's ``WERCKER_RESULT``; a failing after-step stops
    the rest but never changes the pipeline's result."""
    log = runner.inputs.log
    if failure is not None:
        runner.session.restart(log)
    runner.env["WERCKER_RESULT"] = "failed" if failure else "passed"
    if failure:
        runner.env["WERCKER_FAILED_STEP_DISPLAY_NAME"] = failure[0].name
        runner.env["WERCKER_FAILED_STEP_MESSAGE"] = failure[1]
    log.info(f"after-steps (WERCKER_RESULT={runner.env['WERCKER_RESULT']})")
    stop = False
    for position, step in enumerate(runner.planned.after_steps):
        if stop:
            runner.skip("after", position, step, "skipped: an earlier after-step failed")
            continue
        state, _ = runner.run("after", position, step)
        stop = state is not Result.PASSED


def _passed(images: list[PushResult], seconds: float) -> str:
    if not images:
        return f"Passed in {seconds:.0f}s"
    last = images[-1]
    return f"Pushed {last.repository}:{last.tags[0]} ({last.digest[:15]}…) in {seconds:.0f}s"


def _open(
    runner: Runner, planned: PlannedPipeline, box_env: dict[str, str], ws: Workspace, log: Log
) -> Session:
    """Opens the pipeline's session, with its services on a runner that starts them. The
    plan's lint stops a pipeline with services on any other runner; here that is a bug."""
    image = planned.box.image if planned.box is not None else None
    if not planned.services:
        return runner.open(image, box_env, ws, planned.base_path, log)
    if not isinstance(runner, ServiceRunner):
        raise InfrastructureError(
            f"pipeline '{planned.name}' has services; only the docker runner starts them"
        )
    return runner.open(image, box_env, ws, planned.base_path, log, services=planned.services)


def _copy_source(source: Path, dest: Path) -> None:
    """Copies the checkout or the previous pipeline's artifact into the workspace. Links are
    copied as links, never followed (``source`` itself included: it must be a real
    directory), and fifos, sockets and device nodes are left out: opening a fifo would hang
    the bot, and a device node would hand the next step a door to the host."""
    if not _real_dir(source):
        raise InfrastructureError(f"the pipeline's source {source} is not a directory")

    def special(directory: str, names: list[str]) -> set[str]:
        left_out: set[str] = set()
        for name in names:
            try:
                mode = os.lstat(os.path.join(directory, name)).st_mode
            except OSError:
                continue
            if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode) or stat.S_ISLNK(mode)):
                left_out.add(name)
        return left_out

    shutil.copytree(source, dest, symlinks=True, ignore=special, dirs_exist_ok=True)


def _artifact(session: Session, ws: Workspace, log: Log) -> Path:
    """Wercker's hand-off: the output dir if non-empty, else the source dir. Either must be
    a real directory: a symlink a step put in its place is not followed (a warning, and it
    counts as empty), so the next pipeline never starts from a host directory."""
    output = session.collect(session.paths.output)
    if _real_dir(output, log) and any(output.iterdir()):
        return output
    source = session.collect(session.paths.source)
    if _real_dir(source, log):
        return source
    return Path(tempfile.mkdtemp(prefix="artifact-", dir=ws.root))


def _real_dir(path: Path, log: Log | None = None) -> bool:
    """Whether ``path`` is a directory and not a symlink (warns about a symlink)."""
    try:
        mode = os.lstat(path).st_mode
    except OSError:
        return False
    if stat.S_ISLNK(mode) and log is not None:
        log.warn(f"{path} is a symlink; it is not followed (taken as empty)")
    return stat.S_ISDIR(mode)


class _StepRunner:
    """Runs steps of one pipeline, carrying Wercker's env sync between them."""

    def __init__(
        self,
        planned: PlannedPipeline,
        session: Session,
        env: dict[str, str],
        inputs: RunInputs,
        tracer: Tracer,
    ) -> None:
        self.planned = planned
        self.session = session
        self.env = env
        self.synced: dict[str, str] = {}
        self.inputs = inputs
        self.box = planned.box.image if planned.box is not None else None
        self.tracer = tracer
        self.images: list[PushResult] = []
        self.built: dict[str, str] = {}
        self.cut = False  # the abort killed a step or left steps out

    def skip(self, phase: str, position: int, step: StepSpec, reason: str) -> None:
        """Records a step that does not run, so pages list every step of the pipeline."""
        token = self.tracer.step_started(phase, position, step)
        self.tracer.step_finished(token, Result.SKIPPED, None, reason)

    def stopped(self) -> str | None:
        """The abort's reason once the attempt is aborted, else ``None``."""
        abort = self.inputs.abort
        return abort.reason if abort is not None and abort.is_set() else None

    def skip_stopped(self, phase: str, position: int, step: StepSpec) -> None:
        """Records a step the abort left out (``cut``)."""
        self.cut = True
        self.skip(phase, position, step, f"skipped: {self.stopped()}")

    def run(self, phase: str, position: int, step: StepSpec) -> tuple[Result, str]:
        """Runs one step and records it. A step that did not pass while the attempt was
        aborted is ``errored`` with the abort's reason, whatever it raised (the kill)."""
        log = self.inputs.log
        token = self.tracer.step_started(phase, position, step)
        log.info(f"step: {step.name}")
        started = time.monotonic()
        env = {**self.env, **self.synced, **step_env(self.session.paths, step.id, step.name)}
        secrets = dict(self.inputs.secrets)
        outcome = self._call(self._context(step, env, secrets))
        stopped = self.stopped()
        if stopped is not None and isinstance(outcome, _NotPassed):
            log.info(f"step '{step.name}' stopped: {stopped}")
            self.cut = True
            self.tracer.step_finished(token, Result.ERRORED, None, stopped)
            return Result.ERRORED, stopped
        if isinstance(outcome, _NotPassed):
            if outcome.state is Result.FAILED:
                took = time.monotonic() - started
                log.info(f"step '{step.name}' failed after {took:.1f}s: {outcome.message}")
            else:
                log.info(outcome.log_line or f"step '{step.name}' errored: {outcome.message}")
            self.tracer.step_finished(token, outcome.state, outcome.exit_code, outcome.message)
            return outcome.state, outcome.message
        self._sync(outcome.env, env, secrets)
        for image in outcome.images:
            self.images.append(image)
            self.tracer.image_pushed(image)
        took = time.monotonic() - started
        log.info(f"step '{step.name}' passed in {took:.1f}s")
        self.tracer.step_finished(token, Result.PASSED, outcome.exit_code, outcome.message)
        return Result.PASSED, outcome.message

    def _context(self, step: StepSpec, env: dict[str, str], secrets: dict[str, str]) -> StepContext:
        lookup = {**self.env, **secrets}
        if not disable_sync(step):
            lookup.update(self.synced)
        return StepContext(
            step=step,
            session=self.session,
            env=env,
            secrets=secrets,
            lookup=lookup,
            facts=self.inputs.facts,
            log=self.inputs.log,
            timeouts=self.planned.timeouts,
            pusher=self.inputs.pusher,
            engine_pusher=self.inputs.engine_pusher,
            registries=self.inputs.registries,
            box=self.box,
            built_images=self.built,
            package=self.planned.packages.get(step.id),
            abort=self.inputs.abort,
        )

    def _call(self, ctx: StepContext) -> StepOutcome | _NotPassed:
        """The step's outcome, or why it did not pass."""
        step = ctx.step
        impl = PACKAGE_STEP if ctx.package is not None else STEP_TYPES.get(step.id)
        try:
            if impl is None:
                raise StepError(f"step '{step.id}' is not supported by wercker-bot", 1)
            return impl.run(ctx)
        except StepError as err:
            return _NotPassed(Result.FAILED, err.exit_code, str(err))
        except WerckerBotError as err:  # InfrastructureError and the rest: the bot's side
            return _NotPassed(Result.ERRORED, None, str(err))
        except AttemptFenced:  # reaped while away: not the step's outcome; the attempt stops
            raise
        except Exception as err:  # a bug of ours: the user sees a line, the server a traceback
            logger.exception("step %s crashed", step.id)
            message = f"internal error in step '{step.name}': {type(err).__name__}"
            return _NotPassed(Result.ERRORED, None, message, log_line=message)

    def _sync(self, left: dict[str, str], given: dict[str, str], secrets: dict[str, str]) -> None:
        """Wercker's env sync: what a step exported reaches the next steps, except the
        shell's own variables, secrets and the step's ``WERCKER_STEP_*``."""
        for key, value in left.items():
            if key in SHELL_OWN or key in secrets or key.startswith("WERCKER_STEP_"):
                continue
            if given.get(key) != value:
                self.synced[key] = value
