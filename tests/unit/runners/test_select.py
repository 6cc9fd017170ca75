"""Choosing the runner (``bot.runners.select``): ``RunnerChooser.kind_for``'s decision and
log line for each configured kind and host, ``runner`` building it, the probes of the host
running at most once and only when needed, and ``check_runner_settings`` refusing an
expose that would show steps the bot's files. The host's probes are answered by the test;
the real ones are exercised by ``tests/security/test_local_sandbox.py``."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import pytest

from bot.errors import ConfigError, InfrastructureError
from bot.logs import MemoryLog
from bot.runners import select
from bot.runners.docker import DockerRunner
from bot.runners.local import LocalRunner
from bot.runners.sandbox import Sandbox
from bot.runners.select import (
    UNSAFE_WARNING,
    RunnerChooser,
    check_runner_settings,
    select_runner,
)
from bot.settings import GitHubSettings, RepoSettings, Settings, StepLimits

ENGINE_UP = "runner: docker (engine 27.0 at unix:///test.sock)"
ENGINE_DOWN = "runner: local (no Docker Engine at unix:///test.sock: connection refused)"
SANDBOX = Sandbox("/usr/bin/bwrap")
NO_BWRAP = "bwrap was not found on PATH"


def settings_for(tmp_path: Path, kind: str, **kw: object) -> Settings:
    kw.setdefault("repos", {})
    return Settings(
        data_dir=tmp_path / "data",
        base_url="http://bot.test",
        workers=1,
        github=GitHubSettings(webhook_secret="w" * 16),
        runner_kind=kind,
        docker_host="unix:///test.sock",
        **kw,  # type: ignore[arg-type]
    )


class Host:
    """Answers the chooser's two probes and counts them."""

    def __init__(self, engine: bool = True, sandbox: bool = True) -> None:
        self.engine_up = engine
        self.sandbox_found = sandbox
        self.calls = {"engine": 0, "sandbox": 0}

    def engine(self) -> tuple[bool, str]:
        self.calls["engine"] += 1
        return self.engine_up, ENGINE_UP if self.engine_up else ENGINE_DOWN

    def sandbox(self) -> tuple[Sandbox | None, str]:
        self.calls["sandbox"] += 1
        return (SANDBOX, "bubblewrap 0.8.0") if self.sandbox_found else (None, NO_BWRAP)


def chooser(tmp_path: Path, kind: str, host: Host, **kw: object) -> RunnerChooser:
    return RunnerChooser(
        settings_for(tmp_path, kind, **kw), engine_probe=host.engine, sandbox_probe=host.sandbox
    )


def decide(tmp_path: Path, kind: str, host: Host, boxless: Sequence[str] = ()) -> tuple[str, str]:
    log = MemoryLog()
    return chooser(tmp_path, kind, host).kind_for(boxless, log), log.text


def no_sandbox_error(situation: str) -> str:
    return (
        f"{situation} and bubblewrap is unavailable ({NO_BWRAP}): install bubblewrap "
        '(apt-get install bubblewrap) or set [runner] kind = "local-unsafe" to run steps on '
        "this host without a sandbox"
    )


# -- kind_for ------------------------------------------------------------------------------


def test_auto_takes_the_engine_when_it_answers_and_says_why(tmp_path: Path) -> None:
    host = Host()
    kind, text = decide(tmp_path, "auto", host)
    assert kind == "docker" and f"{ENGINE_UP} [auto]" in text
    assert host.calls == {"engine": 1, "sandbox": 0}


def test_configured_docker_says_configured(tmp_path: Path) -> None:
    kind, text = decide(tmp_path, "docker", Host())
    assert kind == "docker" and f"{ENGINE_UP} [configured]" in text


def test_auto_without_an_engine_takes_the_sandbox(tmp_path: Path) -> None:
    kind, text = decide(tmp_path, "auto", Host(engine=False))
    assert kind == "local"
    assert f"{ENGINE_DOWN} [auto; sandbox: bubblewrap 0.8.0]" in text


def test_auto_runs_a_boxless_plan_in_the_sandbox_even_with_an_engine(tmp_path: Path) -> None:
    kind, text = decide(tmp_path, "auto", Host(), boxless=["build", "deploy"])
    assert kind == "local"
    assert "runner: local (auto; no box in pipeline(s) build, deploy; sandbox: bubblewrap" in text


def test_configured_docker_keeps_the_engine_for_a_boxless_plan(tmp_path: Path) -> None:
    host = Host()
    kind, _ = decide(tmp_path, "docker", host, boxless=["build"])
    assert kind == "docker" and host.calls["sandbox"] == 0


def test_configured_docker_without_an_engine_is_an_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(InfrastructureError) as err:
        decide(tmp_path, "docker", Host(engine=False, sandbox=True))
    assert str(err.value) == f"runner kind is docker but the engine is unavailable: {ENGINE_DOWN}"


def test_configured_local_never_asks_the_engine(tmp_path: Path) -> None:
    host = Host()
    kind, text = decide(tmp_path, "local", host)
    assert kind == "local" and "runner: local (configured; sandbox: bubblewrap 0.8.0)" in text
    assert host.calls == {"engine": 0, "sandbox": 1}


@pytest.mark.parametrize(
    ("kind", "engine", "boxless", "situation"),
    [
        ("local", True, (), "runner kind is local"),
        ("auto", False, (), "no Docker Engine answered"),
        ("auto", True, ("build",), "pipeline(s) build have no box"),
    ],
)
def test_nothing_runs_unsandboxed_unless_configured(
    tmp_path: Path, kind: str, engine: bool, boxless: tuple[str, ...], situation: str
) -> None:
    log = MemoryLog()
    with pytest.raises(InfrastructureError) as err:
        chooser(tmp_path, kind, Host(engine=engine, sandbox=False)).kind_for(boxless, log)
    assert str(err.value) == no_sandbox_error(situation)
    assert "runner:" not in log.text  # no choice was announced


def test_local_unsafe_warns_and_probes_nothing(tmp_path: Path) -> None:
    host = Host(engine=False, sandbox=False)
    log = MemoryLog()
    picked = chooser(tmp_path, "local-unsafe", host)
    assert picked.kind_for(["build"], log) == "local-unsafe"
    assert UNSAFE_WARNING in log.text and host.calls == {"engine": 0, "sandbox": 0}


# -- runner --------------------------------------------------------------------------------


def test_each_probe_runs_at_most_once_per_chooser(tmp_path: Path) -> None:
    host = Host(engine=False)
    picked = chooser(tmp_path, "auto", host, step_limits=StepLimits(max_file_mb=7))
    for _ in range(3):
        kind = picked.kind_for([], MemoryLog())
        runner = picked.runner(kind)
        assert isinstance(runner, LocalRunner) and runner.sandbox is SANDBOX
        assert runner.max_file_mb == 7
    assert host.calls == {"engine": 1, "sandbox": 1}


def test_local_unsafe_builds_the_runner_without_a_sandbox(tmp_path: Path) -> None:
    runner = chooser(tmp_path, "local-unsafe", Host()).runner("local-unsafe")
    assert isinstance(runner, LocalRunner) and runner.sandbox is None
    assert runner.kind == "local-unsafe"


def test_docker_builds_the_docker_runner_from_the_settings(tmp_path: Path) -> None:
    credentials = object()
    settings = settings_for(
        tmp_path, "docker", docker_network="bridge", step_limits=StepLimits(memory_mb=512)
    )
    picked = RunnerChooser(settings, credentials)  # type: ignore[arg-type]
    runner = picked.runner("docker")
    assert isinstance(runner, DockerRunner)
    assert (runner.docker_host, runner.network, runner.memory_mb) == (
        "unix:///test.sock",
        "bridge",
        512,
    )
    assert runner.credentials is credentials


def test_local_without_a_sandbox_is_refused_even_when_kind_for_was_skipped(
    tmp_path: Path,
) -> None:
    with pytest.raises(InfrastructureError) as err:
        chooser(tmp_path, "auto", Host(sandbox=False)).runner("local")
    assert str(err.value) == no_sandbox_error("runner kind is local")


def test_an_unknown_kind_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(InfrastructureError, match=r"^unknown runner kind 'kubernetes'$"):
        chooser(tmp_path, "auto", Host()).runner("kubernetes")


def test_select_runner_does_both_moves(tmp_path: Path) -> None:
    log = MemoryLog()
    runner = select_runner(settings_for(tmp_path, "local-unsafe"), log)
    assert runner.kind == "local-unsafe" and UNSAFE_WARNING in log.text


# -- the real probes' inputs ---------------------------------------------------------------


def test_the_sandbox_probe_hides_the_bots_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[Sequence[str], Sequence[str]]] = []

    def find(expose: Sequence[str], hide: Sequence[str]) -> tuple[Sandbox | None, str]:
        seen.append((expose, hide))
        return SANDBOX, "probed"

    monkeypatch.setattr(select, "find_sandbox", find)
    monkeypatch.chdir(tmp_path)
    repo = RepoSettings("acme/app", "", (), {}, {}, ssh_key_file="keys/deploy")
    settings = settings_for(
        tmp_path, "local", sandbox_expose=("/opt/tools",),
        config_path=tmp_path / "bot.toml", repos={"acme/app": repo},
    )  # fmt: skip
    picked = RunnerChooser(settings)
    assert picked.sandbox() == (SANDBOX, "probed") and picked.sandbox() == (SANDBOX, "probed")
    assert seen == [
        (
            ("/opt/tools",),
            (
                str(tmp_path / "data"),
                os.path.expanduser("~"),
                str(tmp_path / "bot.toml"),
                str(tmp_path / "keys" / "deploy"),
            ),
        )
    ]


def test_the_sandbox_probe_refuses_a_bad_expose_before_probing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def find(expose: Sequence[str], hide: Sequence[str]) -> tuple[Sandbox | None, str]:
        raise AssertionError("probed despite a bad expose")

    monkeypatch.setattr(select, "find_sandbox", find)
    settings = settings_for(tmp_path, "local", sandbox_expose=(str(tmp_path),))
    with pytest.raises(ConfigError, match="would show sandboxed steps"):
        RunnerChooser(settings).kind_for([], MemoryLog())


def test_the_engine_probe_asks_the_configured_host(tmp_path: Path) -> None:
    dead = f"unix://{tmp_path}/no-engine.sock"
    settings = Settings(**{**settings_for(tmp_path, "docker").__dict__, "docker_host": dead})
    ok, reason = RunnerChooser(settings).engine()
    assert ok is False and reason.startswith(f"runner: local (no Docker Engine at {dead}")


# -- check_runner_settings -----------------------------------------------------------------


def test_check_runner_settings_accepts_harmless_exposes(tmp_path: Path) -> None:
    tools = tmp_path / "tools"
    tools.mkdir()
    check_runner_settings(settings_for(tmp_path, "auto", sandbox_expose=(str(tools), "/opt")))


@pytest.mark.parametrize("shown", ["data", "data/cache", "etc", "keys", "home"])
def test_check_runner_settings_refuses_what_only_the_bot_may_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shown: str
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "etc").mkdir()
    repo = RepoSettings("acme/app", "", (), {}, {}, ssh_key_file=str(tmp_path / "keys" / "k"))
    settings = settings_for(
        tmp_path, "auto", sandbox_expose=(str(tmp_path / shown),),
        config_path=tmp_path / "etc" / "bot.toml", repos={"acme/app": repo},
    )  # fmt: skip
    with pytest.raises(ConfigError) as err:
        check_runner_settings(settings)
    assert err.value.key == "runner.sandbox_expose"
    assert f"{tmp_path / shown} would show sandboxed steps" in str(err.value)
