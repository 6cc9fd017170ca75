"""The chain of one plan's pipelines: each starts from the previous one's artifact, and
only if the one before it passed. Shared by an attempt (``bot.build.Attempt``) and by
``wercker-bot run`` (``bot.local_run``), which report to it through ``ChainHooks``."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Protocol

from bot.errors import StepError, WerckerBotError
from bot.logs import Log
from bot.models import Result
from bot.pipeline import PipelineRun, RunInputs, Tracer, run_pipeline
from bot.plan import Plan, PlannedPipeline
from bot.pushers.base import EngineImagePusher, Pusher
from bot.pushers.model import ImageSpec
from bot.runners.base import Abort, Runner
from bot.settings import RepoSettings, Settings
from steps.base import BuildFacts


class ChainHooks(Protocol):
    """What ``run_chain`` reports to (the Attempt for real builds, the CLI for ``run``)."""

    def pipeline_started(self, position: int, name: str) -> Tracer: ...

    def pipeline_finished(self, run: PipelineRun) -> None: ...

    def pipeline_skipped(self, position: int, name: str, state: Result, reason: str) -> None: ...


def run_chain(
    plan: Plan,
    source: Path,
    repo: RepoSettings,
    facts: BuildFacts,
    *,
    runner: Runner,
    settings: Settings,
    pusher: Pusher[ImageSpec],
    engine_pusher: EngineImagePusher,
    workdir: Path,
    log: Log,
    hooks: ChainHooks,
    abort: Abort | None = None,
) -> list[PipelineRun]:
    """Runs the plan's pipelines in order on ``runner`` (built for ``plan.runner_kind``);
    each starts from the previous one's artifact. A pipeline starts only if the one before
    it passed; the rest are reported skipped. Once ``abort`` is set no pipeline starts
    (nor is reported): the caller ends the attempt (``Attempt.stopped``)."""
    log.info("pipelines: " + " → ".join(plan.names))
    ref = facts.branch or facts.git_tag
    cache = settings.data_dir / "cache" / path_component(repo.full_name) / path_component(ref)
    inputs = RunInputs(
        facts=facts,
        env=dict(repo.env),
        secrets=dict(repo.secrets),
        registries=dict(settings.registries),
        pusher=pusher,
        engine_pusher=engine_pusher,
        runner=runner,
        cache_dir=cache,
        log=log,
        abort=abort,
    )
    runs: list[PipelineRun] = []
    current = source
    for planned in plan.pipelines:
        if runs and runs[-1].state is not Result.PASSED:
            reason = f"Skipped: '{runs[-1].name}' did not pass"
            # failed → failure (the user's side), errored → error (the bot's side)
            hooks.pipeline_skipped(planned.position, planned.name, runs[-1].state, reason)
            continue
        if abort is not None and abort.is_set():
            break
        run = _run_one(planned, current, workdir, inputs, hooks)
        runs.append(run)
        if run.artifact is not None:
            current = run.artifact
    return runs


def _run_one(
    planned: PlannedPipeline, source: Path, workdir: Path, inputs: RunInputs, hooks: ChainHooks
) -> PipelineRun:
    """One pipeline of the chain, reported to ``hooks``. A pipeline that could not be set up
    is a failed run when the user's wercker.yml is why (a ``StepError``: a box or service
    image the registry refuses or does not have, a registry host it names that does not
    resolve), else an errored run (the bot's environment)."""
    log = inputs.log
    tracer = hooks.pipeline_started(planned.position, planned.name)
    log.info(f"pipeline {planned.name}: starting")
    try:
        run = run_pipeline(
            planned,
            source=source,
            workdir=workdir / f"{planned.position}-{path_component(planned.name)}",
            inputs=inputs,
            tracer=tracer,
        )
    except StepError as err:  # the user's wercker.yml: its box or a service cannot be had
        run = PipelineRun(planned.name, Result.FAILED, str(err))
    except WerckerBotError as err:
        run = PipelineRun(planned.name, Result.ERRORED, str(err))
    log.info(f"pipeline {planned.name}: {run.state} — {run.description}")
    hooks.pipeline_finished(run)
    return run


PATH_COMPONENT_MAX = 100  # characters of a path component we make; file systems allow 255 bytes


def path_component(name: str) -> str:
    """One path component for ``name`` (a repository, branch, tag or pipeline name):
    ASCII letters, digits, ``-``, ``_`` and ``.`` kept, anything else ``_``. Never empty,
    never ``.`` or ``..`` (a ref ``refs/heads/..`` must not reach the cache of every
    repository), and at most ``PATH_COMPONENT_MAX`` characters: a longer name, or one made only of
    dots, becomes a readable prefix plus a hash of the whole name, so it stays distinct."""
    text = "".join(c if c.isascii() and (c.isalnum() or c in "-_.") else "_" for c in name)
    if text and len(text) <= PATH_COMPONENT_MAX and text.strip("."):
        return text
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    prefix = text[: PATH_COMPONENT_MAX - len(digest) - 1].strip(".")
    return f"{prefix}-{digest}" if prefix else f"_{digest}"
