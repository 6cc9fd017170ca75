"""Runs one pipeline: open a session on the runner, run its steps, then its after-steps.

The executor knows nothing of the store or the forge: it reports through a ``Tracer``.
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

from bot.environment import SHELL_OWN, pipeline_env, step_env
from bot.errors import InfrastructureError, StepError, WerckerBotError, WerckerFileError
from bot.logs import Log
from bot.models import Result
from bot.pushers.base import Pusher
from bot.pushers.model import ImageRef, ImageSpec, PushResult
from bot.pushers.target import resolve_box as target_of_box
from bot.pushers.target import without_reference
from bot.runners.base import Runner, Session, Timeouts, Workspace
from bot.settings import RegistrySettings
from bot.wercker.expand import disable_sync, expand
from bot.wercker.model import BoxSpec, PipelineSpec, Problem, StepSpec, WerckerFile
from bot.wercker.plan import steps_for
from bot.wercker.schema import is_strict
from steps import STEP_TYPES
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
    """A finished pipeline. ``artifact`` is the host dir the next pipeline starts from."""

    name: str
    state: Result
    description: str
    images: list[PushResult] = field(default_factory=list)
    artifact: Path | None = None
    seconds: float = 0.0


@dataclass
class RunInputs:
    """What every pipeline of an attempt shares."""

    facts: BuildFacts
    env: Mapping[str, str]
    secrets: Mapping[str, str]
    registries: dict[str, RegistrySettings]
    pusher: Pusher[ImageSpec]
    runner: Runner
    timeouts: Timeouts
    deploy_target: str | None
    cache_dir: Path
    log: Log


def resolve_box(
    box: BoxSpec,
    lookup: Mapping[str, str],
    registries: Mapping[str, RegistrySettings],
    log: Log,
) -> tuple[ImageRef, dict[str, str]]:
    """Expands the box's id, options and env, and resolves where to pull it from."""
    options = {
        key: expand(value, lookup, option=key, strict=is_strict(key))[0]
        for key, value in box.options.items()
    }
    image, _ = expand(box.id, lookup, option="box", strict=False)
    tag = options.pop("tag", "")
    if tag:  # the box's ``tag`` option replaces a tag written in its id
        image = f"{without_reference(image)}:{tag}"
    ref = target_of_box(image, options, registries=registries, log=log)
    env = {k: expand(v, lookup, option=f"box env {k}", strict=False)[0] for k, v in box.env.items()}
    return ref, env


def run_pipeline(
    spec: PipelineSpec,
    wf: WerckerFile,
    *,
    source: Path,
    workdir: Path,
    deploy: bool,
    inputs: RunInputs,
    tracer: Tracer,
) -> PipelineRun:
    """Runs ``spec`` starting from a copy of ``source``. Never raises for step failures:
    they become the run's state. Raises ``WerckerBotError`` only when the pipeline could
    not be set up at all (box pull, runner)."""
    log = inputs.log
    started = time.monotonic()
    ws = Workspace.create(workdir, inputs.cache_dir)
    _copy_source(source, ws.source)
    base_lookup = {**inputs.env, **inputs.secrets}
    box_spec = wf.box_for(spec)
    box_ref: ImageRef | None = None
    box_env: dict[str, str] = {}
    if box_spec is not None:
        box_ref, box_env = resolve_box(box_spec, base_lookup, inputs.registries, log)
        log.add_secrets(box_ref.auth.secrets())
        log.info(f"box: {box_ref}")
    session = inputs.runner.open(box_ref, box_env, ws, spec.base_path, log)
    try:
        env = pipeline_env(
            inputs.facts,
            spec.name,
            session.paths,
            source_dir=wf.source_dir,
            deploy=deploy,
            deploy_target=inputs.deploy_target,
        )
        env.update(box_env)
        env.update(inputs.env)
        runner = _StepRunner(spec, session, env, inputs, box_ref, tracer)
        plan_notes: list[Problem] = []
        main_steps = steps_for(spec, inputs.deploy_target, plan_notes)
        for note in plan_notes:
            log.warn(note.format())
        if not main_steps and spec.targets:
            # Running nothing and reporting success would hide that the deploy never ran.
            raise WerckerFileError(
                f"{wf.path} line {spec.loc.line}: pipeline '{spec.name}' has only deploy "
                f"targets ({', '.join(spec.targets)}); set deploy_target for this repository"
            )
        failure: tuple[StepSpec, str, Result] | None = None
        for position, step in enumerate(main_steps):
            if failure is not None:
                runner.skip("main", position, step, "skipped: an earlier step failed")
                continue
            state, message = runner.run("main", position, step)
            if state is not Result.PASSED:
                failure = (step, message, state)
        if spec.after_steps:
            if failure is not None:
                session.restart(log)
            runner.env["WERCKER_RESULT"] = "failed" if failure else "passed"
            if failure:
                runner.env["WERCKER_FAILED_STEP_DISPLAY_NAME"] = failure[0].name
                runner.env["WERCKER_FAILED_STEP_MESSAGE"] = failure[1]
            log.info(f"after-steps (WERCKER_RESULT={runner.env['WERCKER_RESULT']})")
            stop = False
            for position, step in enumerate(spec.after_steps):
                if stop:
                    runner.skip("after", position, step, "skipped: an earlier after-step failed")
                    continue
                state, _ = runner.run("after", position, step)
                # A failing after-step stops the rest but never changes the result.
                stop = state is not Result.PASSED
        seconds = time.monotonic() - started
        if failure is not None:
            return PipelineRun(spec.name, failure[2], failure[1], runner.images, None, seconds)
        artifact = _artifact(session, ws, log)
        if runner.images:
            last = runner.images[-1]
            desc = (
                f"Pushed {last.repository}:{last.tags[0]} ({last.digest[:15]}…) in {seconds:.0f}s"
            )
        else:
            desc = f"Passed in {seconds:.0f}s"
        return PipelineRun(spec.name, Result.PASSED, desc, runner.images, artifact, seconds)
    finally:
        try:
            session.close()
        except WerckerBotError as err:
            log.warn(f"cleanup: {err}")


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
        spec: PipelineSpec,
        session: Session,
        env: dict[str, str],
        inputs: RunInputs,
        box: ImageRef | None,
        tracer: Tracer,
    ) -> None:
        self.spec = spec
        self.session = session
        self.env = env
        self.synced: dict[str, str] = {}
        self.inputs = inputs
        self.box = box
        self.tracer = tracer
        self.images: list[PushResult] = []
        self.built: dict[str, str] = {}

    def skip(self, phase: str, position: int, step: StepSpec, reason: str) -> None:
        """Records a step that does not run, so pages list every step of the pipeline."""
        token = self.tracer.step_started(phase, position, step)
        self.tracer.step_finished(token, Result.SKIPPED, None, reason)

    def run(self, phase: str, position: int, step: StepSpec) -> tuple[Result, str]:
        log = self.inputs.log
        token = self.tracer.step_started(phase, position, step)
        log.info(f"step: {step.name}")
        started = time.monotonic()
        env = {**self.env, **self.synced, **step_env(self.session.paths, step.id, step.name)}
        secrets = dict(self.inputs.secrets)
        lookup = {**self.env, **secrets}
        if not disable_sync(step):
            lookup.update(self.synced)
        ctx = StepContext(
            step=step,
            session=self.session,
            env=env,
            secrets=secrets,
            lookup=lookup,
            facts=self.inputs.facts,
            log=log,
            timeouts=self.inputs.timeouts,
            pusher=self.inputs.pusher,
            registries=self.inputs.registries,
            box=self.box,
            built_images=self.built,
        )
        impl = STEP_TYPES.get(step.id)
        try:
            if impl is None:
                raise StepError(f"step '{step.id}' is not supported by wercker-bot", 1)
            outcome: StepOutcome = impl.run(ctx)
        except StepError as err:
            took = time.monotonic() - started
            log.info(f"step '{step.name}' failed after {took:.1f}s: {err}")
            self.tracer.step_finished(token, Result.FAILED, err.exit_code, str(err))
            return Result.FAILED, str(err)
        except InfrastructureError as err:
            log.info(f"step '{step.name}' errored: {err}")
            self.tracer.step_finished(token, Result.ERRORED, None, str(err))
            return Result.ERRORED, str(err)
        except WerckerBotError as err:
            log.info(f"step '{step.name}' errored: {err}")
            self.tracer.step_finished(token, Result.ERRORED, None, str(err))
            return Result.ERRORED, str(err)
        except Exception as err:  # a bug of ours: the user sees a line, the server a traceback
            logger.exception("step %s crashed", step.id)
            message = f"internal error in step '{step.name}': {type(err).__name__}"
            log.info(message)
            self.tracer.step_finished(token, Result.ERRORED, None, message)
            return Result.ERRORED, message
        for key, value in outcome.env.items():
            if key in SHELL_OWN or key in secrets or key.startswith("WERCKER_STEP_"):
                continue
            if env.get(key) != value:
                self.synced[key] = value
        for image in outcome.images:
            self.images.append(image)
            self.tracer.image_pushed(image)
        took = time.monotonic() - started
        log.info(f"step '{step.name}' passed in {took:.1f}s")
        self.tracer.step_finished(token, Result.PASSED, outcome.exit_code, outcome.message)
        return Result.PASSED, outcome.message
