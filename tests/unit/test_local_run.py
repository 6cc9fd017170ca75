"""``wercker-bot run DIR`` (``bot.local_run``): the repository, settings and branch it runs
with, its exit codes, what it prints on the terminal, and whole runs of small projects on
the sandboxed local runner (through ``bot.cli.main``, as a user types it)."""

from __future__ import annotations

import argparse
import os
import textwrap
from pathlib import Path

import pytest

from bot.cli import EXIT_ERRORED, EXIT_FAILED, main
from bot.local_run import (
    _bad_branch,
    _exit_code,
    _run_facts,
    _run_repo,
    _run_settings,
    _TerminalHooks,
    _TerminalTracer,
    run_directory,
)
from bot.masking import Masker
from bot.models import Result
from bot.pipeline import PipelineRun
from bot.pushers.model import PushResult
from bot.settings import PipelineChoice, load_settings
from bot.wercker.model import Loc, StepSpec

CLEAN = """\
build:
  steps:
    - script:
        name: hello
        code: echo hello
"""
WITH_ERRORS = """\
build:
  steps:
    - npm test
    - internal/store-container
"""


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No config and no ``X_`` variables from the developer's environment; ``var/`` lands in
    a temporary cwd."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    monkeypatch.delenv("WERCKER_BOT_CONFIG", raising=False)
    for name in [n for n in os.environ if n.startswith("X_")]:
        monkeypatch.delenv(name)


def project(tmp_path: Path, text: str, name: str = "wercker.yml") -> Path:
    directory = tmp_path / "project"
    directory.mkdir(exist_ok=True)
    (directory / name).write_text(textwrap.dedent(text))
    return directory


def args(directory: Path | str = ".", **kw: object) -> argparse.Namespace:
    """What ``bot.cli``'s parser gives ``run`` (its defaults, then ``kw``)."""
    given: dict[str, object] = dict(
        dir=str(directory), pipeline=None, branch=None, repo=None, deploy_target=None,
        runner=None, config=None,
    )  # fmt: skip
    return argparse.Namespace(**{**given, **kw})


def config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "bot.toml"
    path.write_text(f'data_dir = "{tmp_path / "data"}"\n' + textwrap.dedent(text))
    return path


# -- the branch ----------------------------------------------------------------------------


def test_a_valid_or_missing_branch_is_fine() -> None:
    assert _bad_branch(None) is None and _bad_branch("") is None
    assert _bad_branch("feature/x-1.2") is None


@pytest.mark.parametrize(
    ("branch", "problem"),
    [("a..b", "it contains '..'"), ("x\ny", "it contains the control character '\\n'")],
)
def test_a_bad_branch_is_refused_with_gits_rule(branch: str, problem: str) -> None:
    assert _bad_branch(branch) == f"--branch {branch!r} is not a valid git branch name: {problem}"


def test_run_refuses_a_bad_branch_before_running_anything(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = project(tmp_path, CLEAN)
    assert run_directory(args(directory, branch="a..b")) == EXIT_ERRORED
    out, err = capsys.readouterr()
    assert "is not a valid git branch name: it contains '..'" in err and "hello" not in out


# -- the repository ------------------------------------------------------------------------


def test_without_config_the_repo_is_local_with_build_then_deploy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("X_TOKEN", "t")
    monkeypatch.setenv("X_", "ignored")
    monkeypatch.setenv("NOT_X_THING", "ignored")
    directory = tmp_path / "my-app"
    repo = _run_repo(args(directory), _run_settings(args()), directory)
    assert repo.full_name == "local/my-app" and repo.clone_url == ""
    assert repo.pipelines == (PipelineChoice("build"), PipelineChoice("deploy"))
    assert repo.env == {"TOKEN": "t"} and repo.secrets == {} and repo.deploy_target is None


def test_the_configured_repo_gives_env_secrets_pipelines_and_target(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = config(
        tmp_path,
        """\
        [repos."acme/app"]
        pipelines = ["test"]
        deploy_target = "staging"
        env = { GREETING = "hi", LEVEL = "1" }
        secrets = { API_KEY = "k3y-value" }
        """,
    )
    monkeypatch.setenv("X_LEVEL", "2")
    settings = load_settings(path)
    repo = _run_repo(args(repo="Acme/App"), settings, tmp_path)
    assert repo.full_name == "Acme/App"
    assert repo.pipelines == (PipelineChoice("test"),)
    assert repo.env == {"GREETING": "hi", "LEVEL": "2"}  # the terminal's X_ wins
    assert repo.secrets == {"API_KEY": "k3y-value"} and repo.deploy_target == "staging"
    chosen = _run_repo(
        args(repo="acme/app", pipeline=["b", "a"], deploy_target="prod"), settings, tmp_path
    )
    assert chosen.pipelines == (PipelineChoice("b"), PipelineChoice("a"))
    assert chosen.deploy_target == "prod"


def test_settings_default_to_auto_and_runner_overrides_the_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    default = _run_settings(args())
    assert default.runner_kind == "auto" and default.data_dir == tmp_path / "cwd" / "var"
    assert _run_settings(args(runner="local-unsafe")).runner_kind == "local-unsafe"
    path = config(tmp_path, '[runner]\nkind = "local"\n')
    assert _run_settings(args(config=str(path))).runner_kind == "local"
    monkeypatch.setenv("WERCKER_BOT_CONFIG", str(path))
    from_env = _run_settings(args(runner="docker"))
    assert from_env.runner_kind == "docker" and from_env.data_dir == tmp_path / "data"


def test_facts_name_the_run_and_a_commit_time_even_outside_git() -> None:
    facts = _run_facts("local/app", "main", "", "", "r1", "http://bot.test")
    assert facts.run_url == "http://bot.test/runs/r1" and facts.created == "1970-01-01T00:00:00Z"
    assert _run_facts("a/b", "", "c", "2026-01-02T03:04:05+00:00", "r", "u").created == (
        "2026-01-02T03:04:05+00:00"
    )


# -- exit codes and the terminal -----------------------------------------------------------


@pytest.mark.parametrize(
    ("states", "code"),
    [
        ((Result.PASSED, Result.PASSED), 0),
        ((Result.PASSED, Result.FAILED), EXIT_FAILED),
        ((Result.CANCELED,), EXIT_FAILED),
        ((Result.SKIPPED, Result.PASSED), EXIT_FAILED),
        ((Result.FAILED, Result.ERRORED), EXIT_ERRORED),
    ],
)
def test_exit_code_is_the_worst_pipeline(states: tuple[Result, ...], code: int) -> None:
    assert _exit_code([PipelineRun(f"p{i}", s, "") for i, s in enumerate(states)]) == code


def test_terminal_lines_are_masked(capsys: pytest.CaptureFixture[str]) -> None:
    hooks = _TerminalHooks(Masker(["s3cr3t-value"]))
    tracer = hooks.pipeline_started(0, "build")
    step = StepSpec("script", Loc("wercker.yml", 3, 7), "deploy s3cr3t-value")
    token = tracer.step_started("main", 0, step)
    tracer.step_finished(token, Result.FAILED, 3, "bad s3cr3t-value")
    assert isinstance(tracer, _TerminalTracer)
    tracer.step_finished(tracer.step_started("main", 1, step), Result.PASSED, None, "")
    tracer.image_pushed(PushResult("reg.test", "app", ("v1",), "sha256:abc"))
    hooks.pipeline_finished(PipelineRun("build", Result.FAILED, "step failed"))
    hooks.pipeline_skipped(1, "deploy", Result.SKIPPED, "skipped: build failed")
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "==> pipeline build"
    assert lines[1].startswith("--> deploy ****: failed, exit 3 in ") and lines[1].endswith(
        "s — bad ****"
    )
    assert lines[2].startswith("--> deploy ****: passed in ") and lines[2].endswith("s")
    assert lines[3:] == [
        "--> pushed reg.test/app sha256:abc",
        "==> pipeline build: failed (step failed)",
        "==> pipeline deploy: skipped: build failed",
    ]


def test_not_a_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "missing"
    assert run_directory(args(missing)) == EXIT_ERRORED
    assert capsys.readouterr().err == f"{missing}: not a directory\n"


def test_nothing_to_run_without_a_wercker_yml(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert run_directory(args(empty, runner="local-unsafe")) == EXIT_ERRORED
    assert "nothing to run: no wercker.yml" in capsys.readouterr().err


# -- whole runs (the sandboxed local runner) -----------------------------------------------


def run(directory: Path, *extra: str) -> int:
    return main(["run", str(directory), "--runner", "local", *extra])


def test_run_passes_the_branch_to_steps(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    directory = project(
        tmp_path,
        """\
        build:
          steps:
            - script:
                name: show branch
                code: echo "branch is <$WERCKER_GIT_BRANCH>"
        """,
    )
    assert run(directory, "--pipeline", "build", "--branch", "feature/x") == 0
    out = capsys.readouterr().out
    assert "branch is <feature/x>" in out
    assert "==> pipeline build" in out


def test_run_failing_step_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    directory = project(
        tmp_path,
        """\
        build:
          steps:
            - script:
                name: fails
                code: exit 3
        """,
    )
    assert run(directory, "--pipeline", "build", "--branch", "main") == EXIT_FAILED
    assert "exit 3" in capsys.readouterr().out


def test_run_invalid_wercker_yml_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = project(tmp_path, "build:\n  steps:\n    - script:\n        code: [unclosed\n")
    assert run(directory, "--pipeline", "build", "--branch", "main") == EXIT_ERRORED
    out, err = capsys.readouterr()
    assert "wercker.yml:" in out + err


def test_run_registry_step_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    directory = project(tmp_path, WITH_ERRORS)
    assert run(directory, "--pipeline", "build", "--branch", "main") == EXIT_ERRORED


TWO_PIPELINES = """\
a:
  steps:
    - script:
        code: echo "ran-a"
b:
  steps:
    - script:
        code: echo "ran-b"
c:
  steps:
    - script:
        code: echo "ran-c"
"""


def _order(out: str) -> list[str]:
    words = ("ran-a", "ran-b", "ran-c")
    return [word for line in out.splitlines() for word in words if line.strip().endswith(word)]


def test_run_repeated_pipeline_flags_run_in_order(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = project(tmp_path, TWO_PIPELINES)
    assert run(directory, "--pipeline", "b", "--pipeline", "a", "--branch", "main") == 0
    out = capsys.readouterr().out
    assert _order(out) == ["ran-b", "ran-a"], out
    assert out.index("==> pipeline b") < out.index("==> pipeline a")


def test_run_pipeline_flag_with_several_names(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = project(tmp_path, TWO_PIPELINES)
    assert run(directory, "--pipeline", "b", "a", "--branch", "main") == 0
    assert _order(capsys.readouterr().out) == ["ran-b", "ran-a"]


def test_run_masks_the_configured_secrets_and_cleans_up_its_workdir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = config(tmp_path, '[repos."acme/app"]\nsecrets = { API_KEY = "k3y-value-123" }\n')
    monkeypatch.setenv("X_GREETING", "hello-from-x")
    directory = project(
        tmp_path, 'build:\n  steps:\n    - script:\n        code: echo "$API_KEY $GREETING"\n'
    )
    code = run(directory, "--config", str(path), "--repo", "acme/app", "--pipeline", "build")
    out = capsys.readouterr().out
    assert code == 0 and "**** hello-from-x" in out and "k3y-value-123" not in out
    work = tmp_path / "data" / "work"
    assert work.is_dir() and not list(work.glob("run-*"))
