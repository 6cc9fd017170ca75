"""``wercker-bot run DIR``: compiles a local directory's wercker.yml with the bot's settings
(or ``auto`` without any) and runs it with the bot's executor, printing the log and each
pipeline's and step's outcome on the terminal (masked). Exit 0 passed, 1 failed, 2 errored
or nothing to run.

Imported only by that command (``bot.cli`` stays light for ``check``)."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

from bot.chain import run_chain
from bot.checkout import check_ref_format, local_commit_facts
from bot.cli import EXIT_ERRORED, EXIT_FAILED
from bot.logs import CallbackLog
from bot.masking import Masker
from bot.models import Result
from bot.pipeline import PipelineRun, Tracer
from bot.plan import NoWerckerFile, compile_plan
from bot.pushers.model import PushResult
from bot.settings import PipelineChoice, RepoSettings, Settings, load_settings, parse_settings
from bot.stepsources.resolve import StepSources
from bot.wercker.model import StepSpec
from bot.wiring import (
    build_credentials,
    build_engine_pusher,
    build_forge,
    build_pusher,
    build_runners,
)
from steps.base import BuildFacts


class _TerminalHooks:
    """``run``'s view of a pipeline chain: progress lines in the terminal (masked)."""

    def __init__(self, masker: Masker) -> None:
        self.masker = masker

    def say(self, text: str) -> None:
        print(self.masker.mask(text), flush=True)

    def pipeline_started(self, position: int, name: str) -> Tracer:
        self.say(f"==> pipeline {name}")
        return _TerminalTracer(self.say)

    def pipeline_finished(self, run: PipelineRun) -> None:
        self.say(f"==> pipeline {run.name}: {run.state} ({run.description})")

    def pipeline_skipped(self, position: int, name: str, state: Result, reason: str) -> None:
        self.say(f"==> pipeline {name}: {reason}")


class _TerminalTracer:
    def __init__(self, say: Callable[[str], None]) -> None:
        self.say = say
        self.started: dict[int, float] = {}

    def step_started(self, phase: str, position: int, step: StepSpec) -> object:
        self.started[id(step)] = time.monotonic()
        return step

    def step_finished(
        self, token: object, state: Result, exit_code: int | None, message: str
    ) -> None:
        assert isinstance(token, StepSpec)
        took = time.monotonic() - self.started.get(id(token), time.monotonic())
        code = f", exit {exit_code}" if exit_code is not None else ""
        detail = f" — {message}" if message else ""
        self.say(f"--> {token.name}: {state}{code} in {took:.1f}s{detail}")

    def image_pushed(self, result: PushResult) -> None:
        self.say(f"--> pushed {result.registry}/{result.repository} {result.digest}")


def run_directory(args: argparse.Namespace) -> int:
    """Compiles the wercker.yml of a local directory and runs it with the bot's executor,
    printing the log; exit 0 passed, 1 failed, 2 errored or nothing to run."""
    directory = Path(args.dir).resolve()
    if not directory.is_dir():
        print(f"{directory}: not a directory", file=sys.stderr)
        return EXIT_ERRORED
    settings = _run_settings(args)
    git_branch, commit, created = local_commit_facts(directory)
    branch = args.branch if args.branch is not None else git_branch
    bad_branch = _bad_branch(args.branch)
    if bad_branch is not None:
        print(bad_branch, file=sys.stderr)
        return EXIT_ERRORED
    repo = _run_repo(args, settings, directory)
    masker = Masker([*settings.secret_values(), *repo.secrets.values()])

    def echo(text: str) -> None:
        sys.stdout.write(text)
        sys.stdout.flush()

    log = CallbackLog(echo, masker)
    credentials = build_credentials(settings)  # one resolver: box pulls and both pushers
    runners = build_runners(settings, credentials)
    clone_token = build_forge(settings).clone_token(repo.full_name)  # for step sources
    plan = compile_plan(
        directory, repo, branch, runners=runners, registries=settings.registries, log=log,
        steps=StepSources.from_settings(settings, clone_token),
    )  # fmt: skip
    if isinstance(plan, NoWerckerFile):
        print("nothing to run: no wercker.yml", file=sys.stderr)
        return EXIT_ERRORED
    run_id = uuid.uuid4().hex[:24]
    facts = _run_facts(repo.full_name, branch, commit, created, run_id, settings.base_url)
    workdir = settings.data_dir / "work" / f"run-{run_id}"
    try:
        runs = run_chain(
            plan, directory, repo, facts,
            runner=runners.runner(plan.runner_kind), settings=settings,
            pusher=build_pusher(settings, credentials),
            engine_pusher=build_engine_pusher(settings, credentials), workdir=workdir, log=log,
            hooks=_TerminalHooks(masker),
        )  # fmt: skip
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return _exit_code(runs)


def _run_settings(args: argparse.Namespace) -> Settings:
    """The bot's config when one is given, else ``auto``; ``--runner`` overrides the kind."""
    if args.config or os.environ.get("WERCKER_BOT_CONFIG"):
        settings: Settings = load_settings(args.config)
    else:
        settings = parse_settings({"runner": {"kind": "auto"}}, os.environ, base_dir=Path.cwd())
    if args.runner:
        settings = Settings(**{**settings.__dict__, "runner_kind": args.runner})
    return settings


def _bad_branch(branch: str | None) -> str | None:
    """Why ``--branch`` is refused: the same rule as a webhook's ref, since the name reaches
    the cache path and the log. ``None`` when it is fine or not given."""
    problem = check_ref_format(f"refs/heads/{branch}") if branch else None
    if problem is None:
        return None
    return f"--branch {branch!r} is not a valid git branch name: {problem}"


def _run_repo(args: argparse.Namespace, settings: Settings, directory: Path) -> RepoSettings:
    """The repository ``run`` compiles for: ``--repo``'s config (env, secrets, pipelines,
    deploy target) when there is one, the pipelines of ``--pipeline`` (default: the
    config's, else build then deploy) and Wercker's local convention: ``X_FOO`` in the
    environment becomes ``FOO`` in the steps."""
    repo_name = args.repo or f"local/{directory.name}"
    configured = settings.repos.get(repo_name.lower())
    env = {k[2:]: v for k, v in os.environ.items() if k.startswith("X_") and len(k) > 2}
    if args.pipeline:
        choices = tuple(PipelineChoice(n) for n in args.pipeline)
    elif configured is not None and configured.pipelines:
        choices = configured.pipelines
    else:
        choices = (PipelineChoice("build"), PipelineChoice("deploy"))
    return RepoSettings(
        full_name=repo_name,
        clone_url="",
        pipelines=choices,
        env={**(configured.env if configured else {}), **env},
        secrets=dict(configured.secrets) if configured else {},
        deploy_target=args.deploy_target or (configured.deploy_target if configured else None),
    )


def _run_facts(
    repo: str, branch: str, commit: str, created: str, run_id: str, base_url: str
) -> BuildFacts:
    return BuildFacts(
        repo=repo,
        branch=branch,
        git_tag="",
        commit=commit,
        source_url="",
        run_id=run_id,
        run_url=f"{base_url}/runs/{run_id}",
        created=created or "1970-01-01T00:00:00Z",
    )


def _exit_code(runs: Sequence[PipelineRun]) -> int:
    if any(r.state is Result.ERRORED for r in runs):
        return EXIT_ERRORED
    if any(r.state is not Result.PASSED for r in runs):
        return EXIT_FAILED
    return 0
