"""The executor runs a compiled pipeline as planned: main steps until one fails, then the
after-steps with Wercker's result; on the ``local-unsafe`` runner, in a temporary dir."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bot.dispatch.base import AttemptFenced
from bot.logs import MemoryLog
from bot.models import Result
from bot.pipeline import PipelineRun, RunInputs, run_pipeline
from bot.plan import Plan, compile_file
from bot.pushers.credentials import RegistryCredentials
from bot.pushers.daemonless import DaemonlessPusher
from bot.pushers.model import PushResult
from bot.runners.local import LocalRunner
from bot.settings import PipelineChoice, RepoSettings
from bot.wercker.model import StepSpec
from steps.base import BuildFacts
from tests.unit.wercker.helpers import loaded

FACTS = BuildFacts("acme/app", "main", "", "a" * 40, "", "1-1", "http://bot/builds/1", "")


class Steps:
    """A ``Tracer`` that lists ``phase name state`` of every step."""

    def __init__(self) -> None:
        self.rows: list[str] = []
        self.started: dict[int, StepSpec] = {}

    def step_started(self, phase: str, position: int, step: StepSpec) -> object:
        self.started[len(self.started)] = step
        return (phase, step)

    def step_finished(self, token: Any, state: Result, exit_code: int | None, msg: str) -> None:
        phase, step = token
        self.rows.append(f"{phase} {step.name} {state}")

    def image_pushed(self, result: PushResult) -> None:
        raise AssertionError("nothing is pushed here")


class Kind:
    def kind_for(self, boxless: object, log: object) -> str:
        return "local-unsafe"


def run(tmp_path: Path, text: str, name: str, deploy_target: str | None = None) -> tuple[
    PipelineRun, Steps, MemoryLog
]:  # fmt: skip
    wf, problems = loaded(text)
    log = MemoryLog()
    repo = RepoSettings("acme/app", "", (PipelineChoice(name),), {"GREETING": "hi"}, {},
                        deploy_target=deploy_target)  # fmt: skip
    plan = compile_file(wf, problems, repo, "main", runners=Kind(), registries={}, log=log)
    assert isinstance(plan, Plan)
    source = tmp_path / "source"
    source.mkdir(exist_ok=True)
    inputs = RunInputs(
        facts=FACTS,
        env=repo.env,
        secrets={},
        registries={},
        pusher=DaemonlessPusher({}, tmp_path / "blobs", credentials=RegistryCredentials({})),
        engine_pusher=None,  # type: ignore[arg-type]  # the local runner pushes no engine image
        runner=LocalRunner(None),
        cache_dir=tmp_path / "cache",
        log=log,
    )
    steps = Steps()
    result = run_pipeline(
        plan.pipelines[0], source=source, workdir=tmp_path / "work", inputs=inputs, tracer=steps
    )
    return result, steps, log


def test_a_failing_step_skips_the_rest_and_after_steps_see_the_failure(tmp_path: Path) -> None:
    text = """
build:
  steps:
    - script: {name: one, code: "echo $GREETING"}
    - script: {name: two, code: exit 4}
    - script: {name: three, code: "true"}
  after-steps:
    - script: {name: after, code: 'echo "result=$WERCKER_RESULT failed=$WERCKER_FAILED_STEP_DISPLAY_NAME"'}
"""  # noqa: E501
    result, steps, log = run(tmp_path, text, "build")
    assert result.state is Result.FAILED and result.artifact is None
    assert steps.rows == [
        "main one passed",
        "main two failed",
        "main three skipped",
        "after after passed",
    ]
    assert "result=failed failed=two" in log.text and "hi" in log.text


def test_the_planned_deploy_target_runs_and_its_pipeline_passes(tmp_path: Path) -> None:
    text = """
deploy:
  steps:
    - script: {name: default, code: exit 1}
  production:
    - script: {name: prod, code: 'echo "target=$WERCKER_DEPLOYTARGET_NAME"'}
"""
    result, steps, log = run(tmp_path, text, "deploy", deploy_target="production")
    assert result.state is Result.PASSED and result.description.startswith("Passed in ")
    assert steps.rows == ["main prod passed"]
    assert "target=production" in log.text
    assert result.artifact is not None and result.artifact.is_dir()


def test_a_tool_a_step_puts_on_path_serves_the_steps_after_it(tmp_path: Path) -> None:
    """Wercker ran every step in one shell: a virtualenv or Go workspace step that extends
    PATH hands its tools to later steps. The bot's steps are separate shells, so PATH is
    part of the env sync."""
    text = """
build:
  steps:
    - script:
        name: install
        code: |
          mkdir -p "$HOME/tools"
          printf '#!/bin/sh\\necho tool-ran\\n' > "$HOME/tools/my-tool"
          chmod +x "$HOME/tools/my-tool"
          export PATH="$HOME/tools:$PATH"
    - script: {name: use, code: my-tool}
"""
    result, steps, log = run(tmp_path, text, "build")
    assert result.state is Result.PASSED, log.text
    assert steps.rows == ["main install passed", "main use passed"]
    assert "tool-ran" in log.text


def test_a_fenced_step_stops_the_pipeline_without_recording_an_outcome(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker reaped while away learns it in a step (the fence refuses its push): that is
    not the step's outcome to record, nor a crash to log; it stops everything."""
    from steps import STEP_TYPES

    real = STEP_TYPES["script"]

    class Fenced:
        def run(self, ctx: Any) -> object:
            if ctx.step.name == "push":
                raise AttemptFenced(7, "host:1:w0")
            return real.run(ctx)

    monkeypatch.setitem(STEP_TYPES, "script", Fenced())
    text = """
build:
  steps:
    - script: {name: one, code: "true"}
    - script: {name: push, code: "true"}
  after-steps:
    - script: {name: after, code: "true"}
"""
    with pytest.raises(AttemptFenced):
        run(tmp_path, text, "build")
