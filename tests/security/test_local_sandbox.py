"""A hostile build on the local runner (findings 4 and 7). The step tests run real steps
through the runner ``select_runner`` picks for ``[runner] kind = "local"`` (real
bubblewrap), in a ``data_dir`` laid out like a real bot's (store, config, another
repository's cache next to this pipeline's workspace), and check what the step could reach.
The selection tests check that no path runs steps unsandboxed without saying so.

Every step also prints a positive marker, so a step that did not run at all cannot pass.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.errors import InfrastructureError, StepError
from bot.logs import MemoryLog
from bot.runners.base import ScriptResult, Session, Timeouts, Workspace
from bot.runners.select import select_runner
from bot.settings import GitHubSettings, Settings
from tests.security.conftest import Canary

RAN = "STEP-RAN-TO-THE-END"
STEP_TIMEOUTS = Timeouts(60, 60)
DEAD_ENGINE = "unix:///nonexistent/wercker-bot-test/docker.sock"


@dataclass
class Host:
    """A bot's ``data_dir`` with a store, a config file, another repository's cache and this
    pipeline's workspace, and the session a build of ``acme/app`` would get."""

    settings: Settings
    store: Path
    config: Path
    other_cache: Path
    workspace: Workspace
    session: Session


def make_settings(data_dir: Path, kind: str, **kw: object) -> Settings:
    return Settings(
        data_dir=data_dir,
        base_url="http://bot.test",
        workers=1,
        github=GitHubSettings(webhook_secret="w" * 16),
        runner_kind=kind,
        repos={},
        docker_host=DEAD_ENGINE,
        **kw,  # type: ignore[arg-type]
    )


@pytest.fixture
def host(tmp_path: Path, canary: Canary) -> Host:
    data = tmp_path / "data"
    data.mkdir()
    store = data / "wercker-bot.sqlite3"
    store.write_text(f"store {canary.secret}")
    config = tmp_path / "config.toml"
    config.write_text(f'[github]\ntoken = "{canary.secret}"\n')
    other_cache = data / "cache" / "evil_other" / "main"
    other_cache.mkdir(parents=True)
    (other_cache / "secret").write_text(canary.secret)
    settings = make_settings(data, "local", config_path=config)
    workspace = Workspace.create(
        data / "work" / "b1" / "build", data / "cache" / "acme_app" / "main"
    )
    session = select_runner(settings, MemoryLog()).open(None, {}, workspace, None, MemoryLog())
    return Host(settings, store, config, other_cache, workspace, session)


def run(
    session: Session,
    code: str,
    env: dict[str, str] | None = None,
    timeouts: Timeouts = STEP_TIMEOUTS,
) -> tuple[ScriptResult, str]:
    log = MemoryLog()
    result = session.run_script(
        code, env=env or {}, secrets={}, cwd=session.paths.source, timeouts=timeouts, log=log
    )
    return result, log.text


def running(marker: str) -> list[int]:
    found = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True)
    return [int(pid) for pid in found.stdout.split()]


def reap(marker: str) -> None:
    """Kills what a failing test left behind (only this test's unique marker)."""
    for pid in running(marker):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def unique_sleep() -> str:
    # ``sleep 300.<random>`` is a normal sleep whose command line no other process has.
    return f"sleep 300.{secrets.randbelow(10**9):09d}"


SNOOP = (
    "cat /proc/$BOT_PID/environ /proc/$BOT_PID/cmdline 2>/dev/null | tr '\\0' '\\n' || true\n"
    "for f in /proc/[0-9]*/environ; do tr '\\0' '\\n' < \"$f\"; done 2>/dev/null || true\n"
    'if kill -0 "$BOT_PID" 2>/dev/null; then echo "BOT-PID" "VISIBLE"; fi\n'
    'for p in /proc/[0-9]*; do echo "PROC:$(cat "$p/comm")"; done 2>/dev/null\n'
    "env\n"
    f"echo {RAN}\n"
)
"""Everything a step could do to learn the bot's environment (``BOT_PID`` is the bot's pid,
as ``WB_BOT_PID`` gave it before)."""

BOT = """
import json, os, sys
from pathlib import Path
from bot.logs import MemoryLog
from bot.runners.base import Timeouts, Workspace
from bot.runners.select import select_runner
from bot.settings import GitHubSettings, Settings

data = Path(sys.argv[1])
settings = Settings(data_dir=data, base_url="http://bot.test", workers=1,
                    github=GitHubSettings(webhook_secret=os.environ["GITHUB_WEBHOOK_SECRET"],
                                          token=os.environ["GITHUB_TOKEN"]),
                    runner_kind="local", repos={}, docker_host=sys.argv[2])
ws = Workspace.create(data / "work" / "b1" / "build", data / "cache" / "acme_app" / "main")
session = select_runner(settings, MemoryLog()).open(None, {}, ws, None, MemoryLog())
log = MemoryLog()
result = session.run_script(sys.argv[3], env={"BOT_PID": str(os.getpid())}, secrets={},
                            cwd=session.paths.source, timeouts=Timeouts(60, 60), log=log)
print(json.dumps({"out": log.text, "env": result.env, "exit": result.exit_code}))
"""
"""A bot process with its credentials in its real (initial) environment, which is what
``/proc/<pid>/environ`` shows: a variable set later in Python never appears there."""


def assert_nothing_of_the_bot(out: str, env: dict[str, str], secret: str) -> None:
    assert RAN in out
    assert secret not in out and secret not in "".join(env.values())
    assert "GITHUB_TOKEN" not in env and "GITHUB_TOKEN" not in out
    assert "BOT-PID VISIBLE" not in out
    # Only the step's own processes (bwrap's init, its shell, its tools): not the bot.
    procs = {line[5:] for line in out.splitlines() if line.startswith("PROC:")}
    assert procs and not any("python" in p or "pytest" in p for p in procs), procs


def test_the_step_cannot_see_the_bot_process_or_its_environment(
    tmp_path: Path, canary: Canary
) -> None:
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "GITHUB_TOKEN": canary.secret, "GITHUB_WEBHOOK_SECRET": canary.secret}
    env["PYTHONPATH"] = str(root)
    bot = subprocess.run(
        [sys.executable, "-c", BOT, str(tmp_path / "data"), DEAD_ENGINE, SNOOP],
        env=env,
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bot.returncode == 0, bot.stderr
    got = json.loads(bot.stdout.splitlines()[-1])
    assert got["exit"] == 0
    assert_nothing_of_the_bot(got["out"], got["env"], canary.secret)


def test_the_bot_environment_set_at_run_time_stays_out_too(
    host: Host, canary: Canary, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", canary.secret)
    monkeypatch.setenv("GITHUB_WEBHOOK_SECRET", canary.secret)
    result, out = run(host.session, SNOOP, env={"BOT_PID": str(os.getpid())})
    assert result.exit_code == 0
    assert_nothing_of_the_bot(out, result.env, canary.secret)


def test_the_step_cannot_read_the_config_the_store_or_another_repository(
    host: Host, canary: Canary
) -> None:
    result, out = run(
        host.session,
        'cat "$CONFIG" "$STORE" "$OTHER/secret" "$CANARY" 2>&1 || true\n'
        'ls -A "$DATA" "$DATA/cache" 2>/dev/null | sed "s/^/ENTRY:/" || true\n'
        # Anywhere else it can reach (the host's /usr is read-only tools; searching it
        # takes long and proves nothing).
        "timeout 10 grep -rs -m1 CANARY- / --exclude-dir=proc --exclude-dir=sys "
        "--exclude-dir=usr --exclude-dir=dev | head -5 || true\n"
        f"echo {RAN}\n",
        env={
            "CONFIG": str(host.config),
            "STORE": str(host.store),
            "OTHER": str(host.other_cache),
            "CANARY": str(canary.file),
            "DATA": str(host.settings.data_dir),
        },
    )
    assert result.exit_code == 0 and RAN in out
    assert canary.secret not in out
    assert "ENTRY:wercker-bot.sqlite3" not in out and "ENTRY:evil_other" not in out


def test_the_step_cannot_write_the_store(host: Host, canary: Canary) -> None:
    before = host.store.read_text()
    result, out = run(
        host.session,
        'echo "DROP TABLE" >> "$STORE" 2>/dev/null || true\n'
        'rm -f "$STORE" 2>/dev/null || true\n'
        'mkdir -p "$(dirname "$STORE")" 2>/dev/null && echo x > "$STORE" 2>/dev/null || true\n'
        f"echo {RAN}\n",
        env={"STORE": str(host.store)},
    )
    assert result.exit_code == 0 and RAN in out
    # (Inside the sandbox the path may be writable scratch on its private /tmp: what
    # counts is the bot's file.)
    assert host.store.read_text() == before


def test_a_planted_symlink_never_brings_a_host_file_back(host: Host, canary: Canary) -> None:
    # The step points its env dump and message at the canary and fails: the bot must not
    # read the canary back as the step's message or its exports.
    log = MemoryLog()
    try:
        result = host.session.run_script(
            "trap - EXIT\n"
            f"echo {RAN}\n"
            'rm -f "$WB_ENV_DUMP" "$WB_MESSAGE_FILE"\n'
            'ln -s "$CANARY" "$WB_ENV_DUMP"\n'
            'ln -s "$CANARY" "$WB_MESSAGE_FILE"\n'
            "exit 3\n",
            env={"CANARY": str(canary.file)},
            secrets={},
            cwd=host.session.paths.source,
            timeouts=Timeouts(60, 60),
            log=log,
        )
    except StepError as err:
        pytest.fail(f"the bot took a message from a link the step planted: {err}")
    assert RAN in log.text and result.exit_code == 3
    assert canary.secret not in "".join(f"{k}={v}" for k, v in result.env.items())
    assert canary.secret not in log.text
    assert canary.intact()


def test_the_bot_never_writes_through_a_symlink_the_step_planted(
    host: Host, canary: Canary
) -> None:
    # Step 1 plants links at every name the bot could write next to the step's files
    # (the old runner wrote step-N.sh, wrapper.sh, env-N, message-N into its helper dir).
    names = "step-2.sh wrapper.sh env-2 message-2 step-3.sh env-3 message-3"
    result, out = run(
        host.session,
        'for dir in "$(dirname "$WB_SCRIPT")" "$(dirname "$(dirname "$WB_SCRIPT")")" '
        '"$(dirname "$HOME")"; do\n'
        f'  for name in {names}; do ln -sf "$CANARY" "$dir/$name" 2>/dev/null || true; done\n'
        "done\n"
        f"echo {RAN}\n",
        env={"CANARY": str(canary.file)},
    )
    assert result.exit_code == 0 and RAN in out
    for _ in range(2):
        result, out = run(host.session, f"export AFTER=1\necho {RAN}\n", timeouts=Timeouts(15, 15))
        assert result.exit_code == 0 and RAN in out and result.env["AFTER"] == "1"
    assert canary.intact()


def test_a_fifo_or_a_huge_dump_does_not_hang_or_flood_the_bot(host: Host) -> None:
    outcome: dict[str, object] = {}

    def fifo_step() -> None:
        outcome["fifo"] = run(
            host.session,
            "trap - EXIT\n"
            f"echo {RAN}\n"
            'rm -f "$WB_ENV_DUMP" "$WB_MESSAGE_FILE"\n'
            'mkfifo "$WB_ENV_DUMP" "$WB_MESSAGE_FILE"\n',
        )

    worker = threading.Thread(target=fifo_step, daemon=True)
    worker.start()
    worker.join(timeout=15)
    assert not worker.is_alive(), "the bot blocked on a FIFO the step left as its env dump"
    result, out = outcome["fifo"]  # type: ignore[misc]
    assert RAN in out and result.env == {}

    log = MemoryLog()
    result = host.session.run_script(
        f"trap - EXIT\necho {RAN}\nhead -c 5000000 /dev/zero | tr '\\0' 'A' > \"$WB_ENV_DUMP\"\n",
        env={},
        secrets={},
        cwd=host.session.paths.source,
        timeouts=Timeouts(60, 60),
        log=log,
    )
    assert RAN in log.text and result.env == {}
    assert "larger than" in log.text


def test_a_background_process_holding_stdout_neither_hangs_nor_outlives_the_step(
    host: Host,
) -> None:
    sleeper = unique_sleep()
    try:
        started = time.monotonic()
        result, out = run(host.session, f"{sleeper} &\necho {RAN}\n", timeouts=Timeouts(120, 20))
        took = time.monotonic() - started
        assert result.exit_code == 0 and result.timed_out is None and RAN in out
        assert took < 5, f"the step took {took:.1f} s: a background process held its output"
        assert running(sleeper) == []
    finally:
        reap(sleeper)


def test_a_setsid_child_is_gone_after_the_step(host: Host) -> None:
    sleeper = unique_sleep()
    try:
        result, out = run(
            host.session,
            f"setsid {sleeper} </dev/null >/dev/null 2>&1 &\n"
            f"( setsid sh -c '{sleeper} & exit 0' </dev/null >/dev/null 2>&1 & )\n"
            "sleep 0.3\n"
            f"echo {RAN}\n",
        )
        assert result.exit_code == 0 and RAN in out
        assert running(sleeper) == []
    finally:
        reap(sleeper)


def test_a_timeout_still_kills_the_step_and_all_it_started(host: Host) -> None:
    sleeper = unique_sleep()
    try:
        started = time.monotonic()
        result, out = run(
            host.session,
            f"setsid {sleeper} </dev/null >/dev/null 2>&1 &\necho {RAN}\nsleep 60\n",
            timeouts=Timeouts(60, 1.5),
        )
        assert RAN in out and result.timed_out == "no-response-timeout"
        assert result.exit_code != 0 and time.monotonic() - started < 15
        assert running(sleeper) == []
    finally:
        reap(sleeper)


def test_the_step_sees_no_host_secrets_in_etc_or_home(host: Host) -> None:
    result, out = run(
        host.session,
        'for p in /etc/shadow /etc/ssh /etc/ssl/private /root /home /var /run "$BOT_HOME"; do\n'
        '  if [ -e "$p" ]; then echo "VISIBLE $p"; fi\n'
        "done\n"
        'if touch /usr/wb-test 2>/dev/null; then echo "USR-WRITABLE"; rm -f /usr/wb-test; fi\n'
        'test "$(id -u)" = 1000 && echo UID-OK\n'
        f"echo {RAN}\n",
        env={"BOT_HOME": str(Path.home())},
    )
    assert result.exit_code == 0 and RAN in out
    assert "VISIBLE" not in out and "USR-WRITABLE" not in out and "UID-OK" in out


def test_exposed_paths_are_read_only_and_show_nothing_next_to_them(
    tmp_path: Path, canary: Canary
) -> None:
    tools = canary.directory / "tools"
    tools.mkdir()
    (tools / "tool.sh").write_text("echo TOOL-OK\n")
    data = tmp_path / "data"
    settings = make_settings(data, "local", sandbox_expose=(str(tools),))
    ws = Workspace.create(data / "work" / "b1" / "build", data / "cache" / "acme_app" / "main")
    session = select_runner(settings, MemoryLog()).open(None, {}, ws, None, MemoryLog())
    result, out = run(
        session,
        'sh "$TOOLS/tool.sh"\n'
        'if echo x > "$TOOLS/tool.sh"; then echo TOOLS-WRITABLE; fi\n'
        'cat "$CANARY" 2>/dev/null || true\n'
        f"echo {RAN}\n",
        env={"TOOLS": str(tools), "CANARY": str(canary.file)},
    )
    assert result.exit_code == 0 and RAN in out and "TOOL-OK" in out
    assert "TOOLS-WRITABLE" not in out and canary.secret not in out
    assert (tools / "tool.sh").read_text() == "echo TOOL-OK\n"


def test_exposing_the_data_dir_or_the_config_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "data"
    config = tmp_path / "etc" / "bot.toml"
    for shown in (str(tmp_path), str(data), str(data / "cache"), str(config.parent)):
        settings = make_settings(data, "local", sandbox_expose=(shown,), config_path=config)
        with pytest.raises(Exception, match="sandbox_expose") as err:
            select_runner(settings, MemoryLog())
        assert "only the bot may read" in str(err.value)


@pytest.fixture
def no_bwrap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A PATH with git and the shell tools but no bwrap, and no Docker Engine."""
    bin_dir = tmp_path / "bin-without-bwrap"
    bin_dir.mkdir()
    for tool in ("git", "sh", "bash", "env"):
        for where in ("/usr/bin", "/bin"):
            if os.path.exists(f"{where}/{tool}"):
                (bin_dir / tool).symlink_to(f"{where}/{tool}")
                break
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.setenv("DOCKER_HOST", DEAD_ENGINE)
    return bin_dir


def test_auto_without_engine_or_bwrap_refuses_and_runs_nothing(
    tmp_path: Path, no_bwrap: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = (
        "no Docker Engine answered and bubblewrap is unavailable (bwrap was not found on "
        "PATH): install bubblewrap (apt-get install bubblewrap) or set [runner] kind = "
        '"local-unsafe" to run steps on this host without a sandbox'
    )
    log = MemoryLog()
    with pytest.raises(InfrastructureError) as err:
        select_runner(make_settings(tmp_path / "data", "auto"), log)
    assert str(err.value) == expected
    with pytest.raises(InfrastructureError, match="bubblewrap is unavailable"):
        select_runner(make_settings(tmp_path / "data", "local"), MemoryLog())

    # The whole `run` path: the bot exits "could not run it" and the step never ran.
    from bot.cli import main

    project = tmp_path / "project"
    project.mkdir()
    marker = tmp_path / "step-ran"
    (project / "wercker.yml").write_text(
        f"build:\n  steps:\n    - script:\n        code: /usr/bin/touch {marker}\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("WERCKER_BOT_CONFIG", raising=False)
    assert main(["run", str(project), "--runner", "auto"]) == 2
    assert not marker.exists()


def test_a_boxless_plan_under_auto_needs_the_sandbox_too(tmp_path: Path, no_bwrap: Path) -> None:
    from bot.runners.select import runner_for_plan

    class Engine:
        kind = "docker"

    settings = make_settings(tmp_path / "data", "auto")
    with pytest.raises(InfrastructureError, match="bubblewrap is unavailable"):
        runner_for_plan(Engine(), settings, ["build"], MemoryLog())  # type: ignore[arg-type]


def test_auto_without_engine_picks_the_sandbox_and_says_so(tmp_path: Path) -> None:
    log = MemoryLog()
    runner = select_runner(make_settings(tmp_path / "data", "auto"), log)
    assert runner.kind == "local"
    assert "sandbox: bubblewrap" in log.text


def test_local_unsafe_warns_on_every_build(tmp_path: Path) -> None:
    warning = (
        "runner: local-unsafe — steps run on this host without a sandbox and can read "
        "everything the bot can (its config, store and credentials)"
    )
    for _ in range(2):
        log = MemoryLog()
        runner = select_runner(make_settings(tmp_path / "data", "local-unsafe"), log)
        assert warning in log.text
        assert runner.kind == "local-unsafe"
