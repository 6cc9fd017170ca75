"""Build orchestration: one attempt from checkout to the last status.

``Attempt.run``: checkout → ``bot.ancestry.superseded_by`` (git ordering) →
``bot.plan.compile_plan`` (once: the ``Plan`` and its runner kind) → the runner, built once
for that kind → ``run_chain`` → ``bot.pipeline.run_pipeline`` per planned pipeline.

This is the only place that decides between ``failed`` and ``errored``; every commit status
it causes is decided by ``bot.reporter`` (and written to the durable outbox).
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from bot.ancestry import superseded_by
from bot.buildlog import StoreLog
from bot.checkout import checkout
from bot.errors import StepError, WerckerBotError
from bot.logs import Log
from bot.masking import Masker
from bot.models import Result
from bot.pipeline import PipelineRun, RunInputs, Tracer, run_pipeline
from bot.plan import NoWerckerFile, Plan, PlannedPipeline, compile_plan
from bot.pushers.base import EngineImagePusher, Pusher
from bot.pushers.model import ImageSpec, PushResult
from bot.reporter import LOG_INCOMPLETE, NO_WERCKER_YML, BuildReporter, superseded
from bot.runners.base import Runner
from bot.services import Services
from bot.settings import RepoSettings, Settings
from bot.stepsources.resolve import StepSources
from bot.store.base import AttemptRecords, OutboxWriter, QueueStore
from bot.store.rows import Claim
from bot.wercker.model import StepSpec
from steps.base import BuildFacts

logger = logging.getLogger(__name__)

__all__ = ["LOG_INCOMPLETE", "NO_WERCKER_YML", "Attempt", "AttemptStore", "execute", "run_chain"]


class AttemptStore(QueueStore, AttemptRecords, OutboxWriter, Protocol):
    """What one attempt asks of the store: its branch's queue (ordering by ancestry), its
    own records and the status outbox (through the reporter)."""


class StoreTracer:
    """Records pipeline progress in the store."""

    def __init__(
        self,
        store: AttemptRecords,
        attempt_id: int,
        pipeline_id: int,
        pipeline: str,
        masker: Masker,
    ) -> None:
        self.masker = masker
        self.store = store
        self.attempt_id = attempt_id
        self.pipeline_id = pipeline_id
        self.pipeline = pipeline

    def step_started(self, phase: str, position: int, step: StepSpec) -> object:
        return self.store.start_step(self.pipeline_id, position, phase, step.id, step.name)

    def step_finished(
        self, token: object, state: Result, exit_code: int | None, message: str
    ) -> None:
        assert isinstance(token, int)
        self.store.finish_step(token, state, exit_code, self.masker.mask(message))

    def image_pushed(self, result: PushResult) -> None:
        self.store.add_image(
            self.attempt_id,
            self.pipeline,
            result.registry,
            result.repository,
            result.tags,
            result.digest,
        )


class Attempt:
    """Runs one claimed attempt. ``run()`` never raises: every outcome ends in the store
    and every pending status context reaches a final state."""

    def __init__(self, claim: Claim, services: Services) -> None:
        self.claim = claim
        self.svc = services
        self.settings = services.settings
        self.store: AttemptStore = services.store
        self.build = claim.build
        self.repo = self.settings.repos.get(self.build.repo.lower())
        self.masker = services.masker_for(self.repo)
        self.report: BuildReporter = services.reporter.for_build(
            self.store,
            self.build.repo,
            self.build.sha,
            self.build.id,
            self.masker,
        )
        self.url = self.report.target_url
        self.log = StoreLog(
            self.store, claim.attempt_id, self.masker, limit=self.settings.log_limit
        )
        self.workdir = self.settings.data_dir / "work" / f"attempt-{claim.attempt_id}"
        self.pipeline_ids: dict[str, int] = {}
        self.resolved: set[str] = set()

    def log_note(self, description: str) -> str:
        """``description`` (masked) plus ``LOG_INCOMPLETE`` when the store lost part of the
        log, so the page does not claim a whole log (the reporter does the same for
        statuses, keeping the note within GitHub's 140 characters)."""
        description = self.masker.mask(description)
        if not self.log.incomplete:
            return description
        return f"{description} {LOG_INCOMPLETE}"

    def finish(self, state: Result, description: str, planned: Sequence[str]) -> Result:
        """Ends the attempt; every context not yet resolved gets this final state. The
        reporter masks what GitHub gets; ``log_note`` masks what the store keeps."""
        open_names = [name for name in planned if name not in self.resolved]
        self.report.attempt_finished(open_names, state, description, self.log.incomplete)
        self.resolved.update(open_names)
        description = self.log_note(description)
        self.store.error_open_pipelines(self.claim.attempt_id, description)
        self.store.finish_attempt(self.claim.attempt_id, state, description)
        self.log.info(f"attempt {self.claim.attempt_number} {state}: {description}")
        return state

    def run(self) -> Result:
        planned = list(self.build_pipelines())
        try:
            return self._run(planned)
        except WerckerBotError as err:
            return self._finish_safely(Result.ERRORED, str(err), planned)
        except Exception as err:
            logger.exception("attempt %s crashed", self.claim.attempt_id)
            return self._finish_safely(
                Result.ERRORED, f"internal error: {type(err).__name__}; see the bot's log", planned
            )
        finally:
            try:
                self.log.close()
            except Exception:  # the store is failing; recovery will finish the attempt
                logger.exception("closing the log of attempt %s failed", self.claim.attempt_id)
            shutil.rmtree(self.workdir, ignore_errors=True)

    def _finish_safely(self, state: Result, description: str, planned: Sequence[str]) -> Result:
        try:
            return self.finish(state, description, planned)
        except Exception:
            # The store itself is failing: leave the attempt to ``recover_dead``, which
            # resolves its statuses once its heartbeat goes stale.
            logger.exception("could not record the end of attempt %s", self.claim.attempt_id)
            return state

    def build_pipelines(self) -> list[str]:
        return list(self.build.pipelines)

    def _run(self, planned: list[str]) -> Result:
        if self.repo is None:
            return self.finish(
                Result.ERRORED, f"{self.build.repo} is no longer in the bot's config", planned
            )
        repo, build = self.repo, self.build
        self.log.info(
            f"build {build.id} attempt {self.claim.attempt_number}: {build.repo} "
            f"{build.ref} @ {build.sha[:12]}" + (" (redelivered)" if self.claim.explicit else "")
        )
        source = self.workdir / "checkout"
        token = self.svc.forge.clone_token(build.repo)
        created = checkout(
            repo.clone_url, build.sha, build.ref, source, self.log,
            token=token, ssh_key_file=repo.ssh_key_file,
        )  # fmt: skip
        # A user's redelivery (an explicit re-run: the rollback path) is never superseded.
        if not self.claim.explicit:
            stale = superseded_by(
                self.store, build, repo, source, self.log, token=token
            )
            if stale is not None:
                return self.finish(Result.CANCELED, superseded(stale), planned)
        runners = self.svc.runners()
        plan = compile_plan(
            source, repo, build.branch or build.git_tag,
            runners=runners, registries=self.settings.registries, log=self.log,
            steps=StepSources.from_settings(self.settings, token),
        )  # fmt: skip
        if isinstance(plan, NoWerckerFile):
            self.report.no_wercker_yml(planned)
            self.resolved.update(planned)
            self.store.finish_attempt(self.claim.attempt_id, Result.PASSED, NO_WERCKER_YML)
            return Result.PASSED
        runner = runners.runner(plan.runner_kind)
        self.store.set_attempt_runner(self.claim.attempt_id, runner.kind)
        runs = run_chain(
            plan, source, repo, self.facts(created),
            runner=runner, settings=self.settings, pusher=self.svc.pusher,
            engine_pusher=self.svc.engine_pusher,
            workdir=self.workdir, log=self.log, hooks=self,
        )  # fmt: skip
        return self.conclude(runs, planned)

    def facts(self, created: str) -> BuildFacts:
        """What the steps may know about this build (never credentials)."""
        build = self.build
        return BuildFacts(
            repo=self.repo.full_name if self.repo is not None else build.repo,
            branch=build.branch,
            git_tag=build.git_tag,
            commit=build.sha,
            source_url=build.html_url,
            run_id=f"{build.id}-{self.claim.attempt_number}",
            run_url=self.url,
            created=created,
        )

    # hooks for run_chain ---------------------------------------------------------------

    def pipeline_started(self, position: int, name: str) -> Tracer:
        self.report.pipeline_started(name)
        pid = self.store.start_pipeline(self.claim.attempt_id, position, name)
        self.pipeline_ids[name] = pid
        return StoreTracer(self.store, self.claim.attempt_id, pid, name, self.masker)

    def pipeline_finished(self, run: PipelineRun) -> None:
        self.resolved.add(run.name)
        self.store.finish_pipeline(
            self.pipeline_ids[run.name], run.state, self.masker.mask(run.description)
        )
        self.report.pipeline_finished(run.name, run.state, run.description, self.log.incomplete)

    def pipeline_skipped(self, position: int, name: str, state: Result, reason: str) -> None:
        self.resolved.add(name)
        # The row says what happened to this pipeline; its status says why.
        self.store.add_pipeline(self.claim.attempt_id, position, name, Result.SKIPPED, reason)
        self.report.pipeline_skipped(name, state, reason)

    def conclude(self, runs: list[PipelineRun], planned: list[str]) -> Result:
        ran = {r.name for r in runs}
        missing = [name for name in planned if name not in ran and name not in self.resolved]
        self.report.pipelines_not_defined(missing)
        self.resolved.update(missing)
        worst = Result.PASSED
        description = "Passed"
        for run in runs:
            if run.state in (Result.FAILED, Result.ERRORED):
                worst, description = run.state, f"{run.name}: {run.description}"
                break
        if worst is Result.PASSED and runs:
            description = runs[-1].description
        description = self.log_note(description)
        self.store.finish_attempt(self.claim.attempt_id, worst, description)
        self.log.info(f"attempt {self.claim.attempt_number} {worst}")
        return worst


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
) -> list[PipelineRun]:
    """Runs the plan's pipelines in order on ``runner`` (built for ``plan.runner_kind``);
    each starts from the previous one's artifact. A pipeline starts only if the one before
    it passed; the rest are reported skipped."""
    log.info("pipelines: " + " → ".join(plan.names))
    cache = (
        settings.data_dir / "cache" / _safe(repo.full_name) / _safe(facts.branch or facts.git_tag)
    )
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
    )
    runs: list[PipelineRun] = []
    current = source
    for planned in plan.pipelines:
        if runs and runs[-1].state is not Result.PASSED:
            reason = f"Skipped: '{runs[-1].name}' did not pass"
            # failed → failure (the user's side), errored → error (the bot's side)
            hooks.pipeline_skipped(planned.position, planned.name, runs[-1].state, reason)
            continue
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
            workdir=workdir / f"{planned.position}-{_safe(planned.name)}",
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


_SAFE_MAX = 100  # characters of a path component we make; file systems allow 255 bytes


def _safe(name: str) -> str:
    """One path component for ``name`` (a repository, branch, tag or pipeline name):
    ASCII letters, digits, ``-``, ``_`` and ``.`` kept, anything else ``_``. Never empty,
    never ``.`` or ``..`` (a ref ``refs/heads/..`` must not reach the cache of every
    repository), and at most ``_SAFE_MAX`` characters: a longer name, or one made only of
    dots, becomes a readable prefix plus a hash of the whole name, so it stays distinct."""
    text = "".join(c if c.isascii() and (c.isalnum() or c in "-_.") else "_" for c in name)
    if text and len(text) <= _SAFE_MAX and text.strip("."):
        return text
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    prefix = text[: _SAFE_MAX - len(digest) - 1].strip(".")
    return f"{prefix}-{digest}" if prefix else f"_{digest}"


def execute(claim: Claim, services: Services) -> Result:
    attempt = Attempt(claim, services)
    started = time.monotonic()
    result = attempt.run()
    logger.info(
        "attempt %s (build %s) %s in %.1fs",
        claim.attempt_id,
        claim.build.id,
        result,
        time.monotonic() - started,
    )
    return result
