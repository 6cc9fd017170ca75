"""Build orchestration: one attempt from checkout to the last status.

``Attempt.run``: checkout → ``bot.ancestry.superseded_by`` (git ordering) →
``bot.plan.compile_plan`` (once: the ``Plan`` and its runner kind) → the runner, built once
for that kind → ``bot.chain.run_chain`` → ``bot.pipeline.run_pipeline`` per planned pipeline.

This is the only place that decides between ``failed`` and ``errored``; every commit status
it causes is decided by ``bot.reporter`` (and written to the durable outbox).
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Sequence
from typing import Protocol

from bot.ancestry import superseded_by
from bot.buildlog import StoreLog
from bot.chain import run_chain
from bot.checkout import checkout
from bot.dispatch.base import AttemptFenced
from bot.errors import WerckerBotError
from bot.masking import Masker
from bot.models import Result
from bot.pipeline import PipelineRun, Tracer
from bot.plan import NoWerckerFile, compile_plan
from bot.pushers.model import PushResult
from bot.reporter import LOG_INCOMPLETE, NO_WERCKER_YML, BuildReporter, superseded
from bot.runners.base import Abort
from bot.services import Services
from bot.stepsources.resolve import StepSources
from bot.store.base import AttemptRecords, OutboxWriter, QueueStore
from bot.store.rows import Claim
from bot.wercker.model import StepSpec
from steps.base import BuildFacts

logger = logging.getLogger(__name__)

__all__ = ["LOG_INCOMPLETE", "NO_WERCKER_YML", "Attempt", "AttemptStore", "execute"]


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
    and every pending status context reaches a final state.

    ``abort`` (set by another thread: ``WorkerPool.shutdown``) stops it at the next
    boundary (after the checkout, before each pipeline and step) or kills its running
    script step; then ``stopped`` ends it."""

    def __init__(self, claim: Claim, services: Services, abort: Abort | None = None) -> None:
        self.claim = claim
        self.abort = abort or Abort()
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
        except AttemptFenced as err:
            # A reaper ended this attempt while the worker was away: it wrote the end and
            # the statuses; writing anything now would move what it settled.
            logger.warning("attempt %s: %s; stopping without a word", self.claim.attempt_id, err)
            return Result.ERRORED
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
        if self.abort.is_set():
            return self.stopped(planned)
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
            workdir=self.workdir, log=self.log, hooks=self, abort=self.abort,
        )  # fmt: skip
        # Only an attempt the abort cut short (a pipeline stopped, or one left unstarted)
        # is stopped: one whose last step ended as the abort came is simply over.
        passed = all(run.state is Result.PASSED for run in runs)
        unstarted = passed and len(runs) < len(plan.pipelines)
        if self.abort.is_set() and (any(run.stopped for run in runs) or unstarted):
            return self.stopped(planned)
        return self.conclude(runs, planned)

    def stopped(self, planned: Sequence[str]) -> Result:
        """Ends an aborted attempt ``errored`` with the abort's reason, which every context
        still open gets; with ``requeue`` the store also queues the build's next attempt, in
        the same transaction (``restart_attempt``: the contexts go pending again)."""
        abort, number = self.abort, self.claim.attempt_number
        if not abort.requeue:
            return self.finish(Result.ERRORED, abort.reason, planned)
        open_names = [name for name in planned if name not in self.resolved]
        self.report.attempt_finished(open_names, Result.ERRORED, abort.reason, self.log.incomplete)
        self.resolved.update(open_names)
        self.log.info(f"attempt {number} {Result.ERRORED}: {abort.reason}")
        queued = self.store.restart_attempt(self.claim.attempt_id, self.log_note(abort.reason))
        if queued is None:  # recovery or a cancel ended it first
            logger.warning("build %s attempt %d had ended: not re-queued", self.build.id, number)
            return Result.ERRORED
        self.log.info(f"queued again as attempt {queued}")
        logger.warning(
            "build %s: stopped and re-queued attempt %d → %d", self.build.id, number, queued
        )
        return Result.ERRORED

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


def execute(claim: Claim, services: Services, abort: Abort | None = None) -> Result:
    """Runs ``claim`` to its end (``Attempt.run``), stoppable through ``abort``."""
    attempt = Attempt(claim, services, abort)
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
