"""The ``script`` step (``steps/script.py``) with a fake session: what it hands the session
(code, env, secrets apart, the working dir, the timeouts), and how the session's result
becomes the outcome: exported env, a failed step with its exit code, or a timeout naming
which limit was hit. Running scripts for real: tests/unit/runners and tests/integration."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from bot.engine import BoxSnapshot
from bot.errors import StepConfigError, StepError, StepTimeout
from bot.logs import Log, MemoryLog
from bot.pushers.engine.model import BuiltImage, EngineImage
from bot.pushers.model import ImageSpec, PushResult, Target
from bot.runners.base import GuestPaths, ScriptResult, Timeouts
from bot.wercker.model import Loc, StepSpec
from steps.base import BuildFacts, StepContext, StepOutcome
from steps.script import ScriptStep

FACTS = BuildFacts("acme/app", "main", "", "c" * 40, "", "1", "", "")
PATHS = GuestPaths("/pipeline", "/pipeline", "/pipeline/source", "/pipeline/output", "/cache")


@dataclass
class Call:
    code: str
    env: dict[str, str]
    secrets: dict[str, str]
    cwd: str
    timeouts: Timeouts


@dataclass
class FakeSession:
    """A ``Session`` whose ``run_script`` records the call and returns ``result``."""

    result: ScriptResult
    kind: str = "local"
    can_commit: bool = False
    paths: GuestPaths = PATHS
    calls: list[Call] = field(default_factory=list)

    def run_script(
        self,
        code: str,
        *,
        env: dict[str, str],
        secrets: dict[str, str],
        cwd: str,
        timeouts: Timeouts,
        log: Log,
    ) -> ScriptResult:
        self.calls.append(Call(code, env, secrets, cwd, timeouts))
        return self.result

    def collect(self, guest_dir: str) -> Path:
        raise AssertionError("a script step collects nothing")

    def put_dir(self, source: Path, name: str) -> str:
        raise AssertionError("a script step stages nothing")

    def restart(self, log: Log) -> None:
        pass

    def close(self) -> None:
        pass


class NoPusher:
    """``Pusher[ImageSpec]``: a script never pushes."""

    def push(self, source: ImageSpec, target: Target, log: Log) -> PushResult:
        raise AssertionError("a script step pushes nothing")

    def sweep(self) -> list[Path]:
        return []


class NoEnginePusher:
    """``EngineImagePusher``: a script never pushes or builds."""

    def push(self, source: EngineImage, target: Target, log: Log) -> PushResult:
        raise AssertionError("a script step pushes nothing")

    def sweep(self) -> list[Path]:
        return []

    def build(
        self, box: BoxSnapshot, context_dir: Path, options: dict[str, Any], name: str, log: Log
    ) -> BuiltImage:
        raise AssertionError("a script step builds nothing")


def run(
    options: dict[str, str],
    result: ScriptResult | None = None,
    *,
    cwd: str | None = None,
    env: dict[str, str] | None = None,
    timeouts: Timeouts | None = None,
) -> tuple[StepOutcome, FakeSession]:
    session = FakeSession(result or ScriptResult(0))
    step = StepSpec("script", Loc("wercker.yml", 9, 7), "unit tests", options, cwd=cwd)
    ctx = StepContext(
        step=step,
        session=session,
        env=env if env is not None else {"CI": "true"},
        secrets={"TOKEN": "tok-123"},
        lookup={},
        facts=FACTS,
        log=MemoryLog(),
        timeouts=timeouts or Timeouts(),
        pusher=NoPusher(),
        engine_pusher=NoEnginePusher(),
    )
    return ScriptStep().run(ctx), session


def test_the_code_runs_in_the_source_dir_with_env_and_secrets_apart() -> None:
    timeouts = Timeouts(600, 60)
    outcome, session = run({"code": "make test"}, timeouts=timeouts)
    (call,) = session.calls
    assert call == Call("make test", {"CI": "true"}, {"TOKEN": "tok-123"}, PATHS.source, timeouts)
    assert outcome == StepOutcome()


def test_wercker_source_dir_in_the_env_is_where_it_runs() -> None:
    _, session = run({"code": "ls"}, env={"WERCKER_SOURCE_DIR": "/pipeline/source/sub"})
    assert session.calls[0].cwd == "/pipeline/source/sub"


@pytest.mark.parametrize(
    ("cwd", "where"),
    [("app", "/pipeline/source/app"), ("app/../lib/", "/pipeline/source/lib"), ("/tmp", "/tmp")],
)
def test_the_cwd_option_is_taken_from_the_source_dir(cwd: str, where: str) -> None:
    _, session = run({"code": "ls"}, cwd=cwd)
    assert session.calls[0].cwd == where


def test_what_the_script_exported_is_the_outcomes_env() -> None:
    outcome, _ = run({"code": "export X=1"}, ScriptResult(0, env={"X": "1"}))
    assert outcome.env == {"X": "1"} and outcome.exit_code == 0


@pytest.mark.parametrize("options", [{}, {"code": ""}, {"code": "  \n\t"}])
def test_a_step_without_code_is_a_config_error(options: dict[str, str]) -> None:
    with pytest.raises(StepConfigError, match="step 'unit tests' has no code"):
        run(options)


@pytest.mark.parametrize("exit_code", [1, 2, 127])
def test_a_failing_script_fails_the_step_with_its_exit_code(exit_code: int) -> None:
    with pytest.raises(StepError) as caught:
        run({"code": "false"}, ScriptResult(exit_code))
    assert not isinstance(caught.value, StepTimeout)
    assert str(caught.value) == f"Step 'unit tests' failed (exit {exit_code})"
    assert caught.value.exit_code == exit_code


@pytest.mark.parametrize(
    ("kind", "timeouts", "said"),
    [
        ("command-timeout", Timeouts(1500, 300), "no completion in 25 min"),
        ("command-timeout", Timeouts(90, 300), "no completion in 90 s"),
        ("no-response-timeout", Timeouts(1500, 300), "no output in 5 min"),
        ("no-response-timeout", Timeouts(1500, 0.5), "no output in 0.5 s"),
        ("no-response-timeout", Timeouts(1500, None), "no output in -"),
    ],
)
def test_a_timeout_names_the_limit_and_exits_124(kind: str, timeouts: Timeouts, said: str) -> None:
    with pytest.raises(StepTimeout) as caught:
        run({"code": "sleep 9999"}, ScriptResult(137, timed_out=kind), timeouts=timeouts)
    assert str(caught.value) == f"Step 'unit tests' killed by {kind} ({said})"
    assert caught.value.exit_code == 124
