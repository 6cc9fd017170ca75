"""Build orchestration: one attempt from checkout to the last status.

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

from bot.buildlog import StoreLog
from bot.checkout import ancestry, checkout, is_ancestor
from bot.errors import WerckerBotError, WerckerFileError
from bot.logs import Log
from bot.masking import Masker
from bot.models import Result
from bot.pipeline import PipelineRun, RunInputs, Tracer, run_pipeline
from bot.pushers.base import Pusher
from bot.pushers.credentials import registry_credentials
from bot.pushers.model import ImageSpec, PushResult
from bot.reporter import LOG_INCOMPLETE, NO_WERCKER_YML, BuildReporter, superseded
from bot.runners.base import Runner, Timeouts
from bot.runners.select import runner_for_plan, select_runner
from bot.services import Services
from bot.settings import PipelineChoice, RepoSettings, Settings
from bot.store.store import Claim, Store
from bot.wercker.lint import lint_for_runner
from bot.wercker.model import PipelineSpec, StepSpec, WerckerFile
from bot.wercker.parse import load_dir
from bot.wercker.plan import blocking_problems, select_pipelines, timeouts_for
from steps.base import BuildFacts

logger = logging.getLogger(__name__)

__all__ = ["LOG_INCOMPLETE", "NO_WERCKER_YML", "Attempt", "execute", "run_chain"]


class StoreTracer:
    """Records pipeline progress in the store."""

    def __init__(
        self, store: Store, attempt_id: int, pipeline_id: int, pipeline: str, masker: Masker
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
        self.store = services.store
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
        """Ends the attempt; every context not yet resolved gets this final state."""
        description = self.masker.mask(description)
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
        build = self.build
        if self.repo is None:
            return self.finish(
                Result.ERRORED, f"{build.repo} is no longer in the bot's config", planned
            )
        self.log.info(
            f"build {build.id} attempt {self.claim.attempt_number}: {build.repo} "
            f"{build.ref} @ {build.sha[:12]}"
            + (" (redelivered)" if self.claim.explicit else "")
        )
        credentials = registry_credentials(self.settings.registries)
        runner = select_runner(self.settings, self.log, credentials)
        source = self.workdir / "checkout"
        created = checkout(
            self.repo.clone_url,
            build.sha,
            build.ref,
            source,
            self.log,
            token=self.settings.github.token,
            ssh_key_file=self.repo.ssh_key_file,
        )
        stale = self.superseded_by(source)
        if stale is not None:
            return self.finish(Result.CANCELED, superseded(stale), planned)
        facts = BuildFacts(
            repo=self.repo.full_name,
            branch=build.branch,
            git_tag=build.git_tag,
            commit=build.sha,
            source_url=build.html_url,
            run_id=f"{build.id}-{self.claim.attempt_number}",
            run_url=self.url,
            created=created,
        )
        plan = plan_run(
            source,
            runner,
            self.settings,
            self.repo.pipelines,
            facts.branch or facts.git_tag,
            self.log,
            self.repo.deploy_target,
        )
        if plan is None:
            self.report.no_wercker_yml(planned)
            self.resolved.update(planned)
            self.store.finish_attempt(self.claim.attempt_id, Result.PASSED, NO_WERCKER_YML)
            return Result.PASSED
        runner, wf, selected = plan
        self.store.set_attempt_runner(self.claim.attempt_id, runner.kind)
        runs = run_chain(
            wf,
            source,
            self.repo,
            facts,
            runner=runner,
            settings=self.settings,
            pusher=self.svc.pusher,
            workdir=self.workdir,
            log=self.log,
            hooks=self,
            selected=selected,
        )
        return self.conclude(runs, planned)

    def superseded_by(self, source: Path) -> str | None:
        """Places this build among its branch's builds by git ancestry, once its commit is
        checked out (intake could only use what payloads prove; behaviour §3).

        Returns the sha of a descendant that makes this build moot: one already built for
        this branch, or one queued behind it (a user's redelivery does not count). Returns
        ``None`` when this build should run; the queued builds whose commits are its
        ancestors are then canceled now ("Superseded by <this sha>", statuses resolved), so
        they never push over it. Unrelated histories (a force push) and whatever git cannot
        tell keep arrival order. A user's redelivery (an explicit re-run: the rollback
        path) is never superseded and supersedes nothing."""
        build = self.build
        if self.claim.explicit or not build.branch or self.repo is None:
            return None
        repo, branch, sha = build.repo, build.branch, build.sha
        token, ssh_key = self.settings.github.token, self.repo.ssh_key_file
        newest = self.store.newest_built_sha(repo, branch, build.id)
        if (
            newest is not None
            and newest != sha
            and is_ancestor(
                source,
                sha,
                newest,
                self.log,
                token=token,
                clone_url=self.repo.clone_url,
                ssh_key_file=ssh_key,
            )
        ):
            self.log.info(
                f"{sha[:12]} is older than {newest[:12]}, already built for this branch; "
                "not pushing over it (redeliver this push to roll back on purpose)"
            )
            return newest
        queued = [
            q for q in self.store.queued_on_branch(repo, branch, build.id) if not q.explicit
        ]
        if not queued:
            return None
        related = ancestry(
            source,
            sha,
            [q.sha for q in queued],
            self.log,
            token=token,
            clone_url=self.repo.clone_url,
            ssh_key_file=ssh_key,
        )
        if related.descendants:
            newer = related.descendants[-1]  # several: the latest to arrive
            self.log.info(
                f"{sha[:12]} is an ancestor of {newer[:12]}, queued for this branch; that "
                "build runs instead (redeliver this push to roll back on purpose)"
            )
            return newer
        older = [q for q in queued if q.sha in related.ancestors]
        canceled = set(self.store.supersede(repo, older, sha)) if older else set()
        if canceled:
            self.log.info(
                "canceled the queued builds of older commits of this branch: "
                + ", ".join(
                    f"#{q.build_id} ({q.sha[:12]})" for q in older if q.attempt_id in canceled
                )
            )
        return None

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
        description = self.log_note(self.masker.mask(description))
        self.store.finish_attempt(self.claim.attempt_id, worst, description)
        self.log.info(f"attempt {self.claim.attempt_number} {worst}")
        return worst


def load_checked(
    source: Path,
    runner_kind: str,
    log: Log,
    choices: Sequence[PipelineChoice],
    branch: str,
    deploy_target: str | None = None,
) -> tuple[WerckerFile, list[PipelineSpec]] | None:
    """Reads, lints and plans the wercker.yml of ``source``: the file and the pipelines to
    run. Returns ``None`` when there is no file. Raises ``WerckerFileError`` naming the first
    blocking error (with its line): errors in pipelines that will not run do not block.
    Every problem is written to the log."""
    wf, problems, path = load_dir(source)
    if path is None:
        log.info("no wercker.yml or .wercker.yml in the repository root")
        return None
    log.info(f"read {path.name}")
    if wf is not None:
        problems = [*problems, *lint_for_runner(wf, runner_kind)]
    for problem in problems:
        log.info(problem.format())
    if wf is None:
        errors = [p for p in problems if p.severity == "error"]
        first = errors[0].short() if errors else f"{path.name} could not be read"
        raise WerckerFileError(first, list(errors))
    selected = select_pipelines(wf, choices, branch)
    errors = blocking_problems(problems, selected, deploy_target)
    if errors:
        more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
        raise WerckerFileError(errors[0].short() + more, list(errors))
    return wf, selected


def plan_run(
    source: Path,
    runner: Runner,
    settings: Settings,
    choices: Sequence[PipelineChoice],
    branch: str,
    log: Log,
    deploy_target: str | None = None,
) -> tuple[Runner, WerckerFile, list[PipelineSpec]] | None:
    """``load_checked`` for the runner that will really run the plan: under ``auto`` a plan
    whose pipelines have no box moves from the docker runner to the local one, and is then
    linted for it. ``None`` when there is no wercker.yml."""
    loaded = load_checked(source, runner.kind, log, choices, branch, deploy_target)
    if loaded is None:
        return None
    wf, selected = loaded
    boxless = [p.name for p in selected if wf.box_for(p) is None]
    switched = runner_for_plan(runner, settings, boxless, log)
    if switched is not runner:
        loaded = load_checked(source, switched.kind, log, choices, branch, deploy_target)
        assert loaded is not None
        wf, selected = loaded
    return switched, wf, selected


class ChainHooks(Protocol):
    """What ``run_chain`` reports to (the Attempt for real builds, the CLI for ``run``)."""

    def pipeline_started(self, position: int, name: str) -> Tracer: ...

    def pipeline_finished(self, run: PipelineRun) -> None: ...

    def pipeline_skipped(self, position: int, name: str, state: Result, reason: str) -> None: ...


def run_chain(
    wf: WerckerFile,
    source: Path,
    repo: RepoSettings,
    facts: BuildFacts,
    *,
    runner: Runner,
    settings: Settings,
    pusher: Pusher[ImageSpec],
    workdir: Path,
    log: Log,
    hooks: ChainHooks,
    selected: Sequence[PipelineSpec],
) -> list[PipelineRun]:
    """Runs the selected pipelines in order; each starts from the previous one's artifact.
    A pipeline starts only if the one before it passed; the rest are reported skipped."""
    log.info("pipelines: " + " → ".join(p.name for p in selected))
    command, no_response = timeouts_for(wf)
    cache = (
        settings.data_dir / "cache" / _safe(repo.full_name) / _safe(facts.branch or facts.git_tag)
    )
    inputs = RunInputs(
        facts=facts,
        env=dict(repo.env),
        secrets=dict(repo.secrets),
        registries=dict(settings.registries),
        pusher=pusher,
        runner=runner,
        timeouts=Timeouts(command, no_response),
        deploy_target=repo.deploy_target,
        cache_dir=cache,
        log=log,
    )
    runs: list[PipelineRun] = []
    current = source
    for position, spec in enumerate(selected):
        if runs and runs[-1].state is not Result.PASSED:
            reason = f"Skipped: '{runs[-1].name}' did not pass"
            # failed → failure (the user's side), errored → error (the bot's side)
            hooks.pipeline_skipped(position, spec.name, runs[-1].state, reason)
            continue
        tracer = hooks.pipeline_started(position, spec.name)
        log.info(f"pipeline {spec.name}: starting")
        try:
            run = run_pipeline(
                spec,
                wf,
                source=current,
                workdir=workdir / f"{position}-{_safe(spec.name)}",
                deploy=position > 0 or spec.name == "deploy",
                inputs=inputs,
                tracer=tracer,
            )
        except WerckerBotError as err:
            run = PipelineRun(spec.name, Result.ERRORED, str(err))
        log.info(f"pipeline {spec.name}: {run.state} — {run.description}")
        hooks.pipeline_finished(run)
        runs.append(run)
        if run.artifact is not None:
            current = run.artifact
    return runs


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
