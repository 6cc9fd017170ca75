"""A hostile build on the local runner (findings 4 and 7). The step tests run real steps
through the runner ``select_runner`` picks for ``[runner] kind = "local"`` (real
bubblewrap), in a ``data_dir`` laid out like a real bot's (store, config, another
repository's cache next to this pipeline's workspace), and check what the step could reach.
The selection tests check that no path runs steps unsandboxed without saying so.

Every step also prints a positive marker, so a step that did not run at all cannot pass.
"""

from __future__ import annotations

import contextlib
import hashlib
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

from bot.errors import ConfigError, InfrastructureError, StepError
from bot.logs import MemoryLog
from bot.runners.base import ScriptResult, Session, Timeouts, Workspace
from bot.runners.local import LocalRunner
from bot.runners.sandbox import find_sandbox
from bot.runners.select import select_runner
from bot.settings import GitHubSettings, RepoSettings, Settings, StepLimits
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
    kw.setdefault("repos", {})
    return Settings(
        data_dir=data_dir,
        base_url="http://bot.test",
        workers=1,
        github=GitHubSettings(webhook_secret="w" * 16),
        runner_kind=kind,
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
    outcome: dict[str, tuple[ScriptResult, str]] = {}

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
    result, out = outcome["fifo"]
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
    from bot.runners.select import RunnerChooser

    settings = make_settings(tmp_path / "data", "auto")
    engine = RunnerChooser(settings, engine_probe=lambda: (True, "runner: docker (engine)"))
    with pytest.raises(InfrastructureError, match="bubblewrap is unavailable"):
        engine.kind_for(["build"], MemoryLog())


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


def test_the_bot_files_under_a_shown_tree_are_hidden_but_the_workspace_is_not(
    tmp_path: Path, canary: Canary
) -> None:
    """A bot laid out inside a tree the sandbox shows (as under ``/usr/local``): config,
    ``data_dir`` (store, another repository's cache), an ssh key and its home. The tree is
    exposed straight to the sandbox (``select_runner`` refuses such an expose: see below),
    with a tool directory inside the home exposed on purpose too."""
    shown = tmp_path / "shown"
    (shown / "etc").mkdir(parents=True)
    (shown / "public.txt").write_text("PUBLIC-OK\n")
    config = shown / "etc" / "wercker-bot.toml"
    config.write_text(f'[github]\ntoken = "{canary.secret}"\n')
    data = shown / "var" / "wercker-bot"
    (data / "cache" / "evil_other" / "main").mkdir(parents=True)
    store = data / "wercker-bot.sqlite3"
    store.write_text(f"store {canary.secret}")
    other = data / "cache" / "evil_other" / "main" / "secret"
    other.write_text(canary.secret)
    key = shown / "etc" / "ssl" / "deploy_key"
    key.parent.mkdir()
    key.write_text(canary.secret)
    home = shown / "home" / "bot"
    (home / "tools").mkdir(parents=True)
    (home / ".netrc").write_text(canary.secret)
    (home / "tools" / "tool.sh").write_text("echo TOOL-OK\n")
    ws = Workspace.create(data / "work" / "b1" / "build", data / "cache" / "acme_app" / "main")
    (ws.cache / "kept").write_text("CACHE-KEPT\n")
    sandbox, why = find_sandbox(
        [str(shown), str(home / "tools")], [str(p) for p in (data, config, key, home)]
    )
    assert sandbox is not None, why
    session = LocalRunner(sandbox).open(None, {}, ws, None, MemoryLog())
    result, out = run(
        session,
        'cat "$SHOWN/public.txt"; sh "$HOME_DIR/tools/tool.sh"\n'
        'for f in "$CONFIG" "$STORE" "$OTHER" "$KEY" "$HOME_DIR/.netrc"; do\n'
        '  cat "$f" 2>/dev/null || echo "UNREADABLE $f"\n'
        "done\n"
        'ls -A "$DATA" "$DATA/cache" "$HOME_DIR" | sed "s/^/ENTRY:/"\n'
        'grep -rs CANARY- "$SHOWN" | head -5 || true\n'
        'cat "$CACHE/kept"; echo new > "$CACHE/new"; echo src > "$SRC/made"; cat "$SRC/made"\n'
        'if touch "$DATA/planted" 2>/dev/null; then echo DATA-WRITABLE; fi\n'
        f"echo {RAN}\n",
        env={
            "SHOWN": str(shown),
            "CONFIG": str(config),
            "STORE": str(store),
            "OTHER": str(other),
            "KEY": str(key),
            "HOME_DIR": str(home),
            "DATA": str(data),
            "CACHE": str(ws.cache),
            "SRC": str(ws.source),
        },
    )
    assert result.exit_code == 0 and RAN in out
    # What is shown on purpose still is; the step's own directories are its own.
    assert "PUBLIC-OK" in out and "TOOL-OK" in out and "CACHE-KEPT" in out and "\nsrc" in out
    assert (ws.cache / "new").read_text() == "new\n" and (ws.source / "made").exists()
    # The bot's files are not.
    assert canary.secret not in out
    for path in (config, store, other, key):
        assert f"UNREADABLE {path}" in out
    entries = {line[6:] for line in out.splitlines() if line.startswith("ENTRY:")}
    assert entries & {"wercker-bot.sqlite3", "evil_other", ".netrc"} == set(), entries
    assert "DATA-WRITABLE" not in out and not (data / "planted").exists()


def test_exposing_a_directory_holding_an_ssh_key_is_refused(tmp_path: Path) -> None:
    key = tmp_path / "keys" / "deploy_key"
    repo = RepoSettings(
        "acme/app", "git@github.com:acme/app.git", (), {}, {}, ssh_key_file=str(key)
    )
    for shown in (key.parent, key):
        settings = make_settings(
            tmp_path / "data", "local", sandbox_expose=(str(shown),), repos={"acme/app": repo}
        )
        with pytest.raises(ConfigError, match="only the bot may read") as err:
            select_runner(settings, MemoryLog())
        assert err.value.key == "runner.sandbox_expose"


def _shown_host_files() -> tuple[Path, Path, Path]:
    """Stand-ins for a bot whose config, ssh key and home sit where the sandbox shows the
    host anyway (tests must not write there): a whitelisted ``/etc`` file (``os-release``
    links into ``/usr/lib`` on most hosts), a file and a non-empty directory of
    ``/usr/share`` none of the step's tools need."""
    etc = [Path("/etc/os-release"), Path("/etc/debian_version"), Path("/etc/shells")]
    licenses = Path("/usr/share/common-licenses")
    usr = sorted(licenses.iterdir()) if licenses.is_dir() else []
    doc = Path("/usr/share/doc")
    found = (
        next((p for p in etc if p.is_file() and p.stat().st_size), None),
        next((p for p in usr if p.is_file() and not p.is_symlink() and p.stat().st_size), None),
        doc if doc.is_dir() and any(doc.iterdir()) else None,
    )
    if None in found:
        pytest.skip(f"this host lacks the files this test borrows: {found}")
    return found  # type: ignore[return-value]


def test_the_config_an_ssh_key_and_home_under_usr_or_etc_are_hidden(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config, key, home = _shown_host_files()
    monkeypatch.setenv("HOME", str(home))
    repo = RepoSettings(
        "acme/app", "git@github.com:acme/app.git", (), {}, {}, ssh_key_file=str(key)
    )
    data = tmp_path / "data"
    settings = make_settings(data, "local", config_path=config, repos={"acme/app": repo})
    ws = Workspace.create(data / "work" / "b1" / "build", data / "cache" / "acme_app" / "main")
    session = select_runner(settings, MemoryLog()).open(None, {}, ws, None, MemoryLog())
    aliases = {config, Path(os.path.realpath(config)), key}
    result, out = run(
        session,
        "".join(f'sha256sum "{p}" 2>/dev/null || echo "UNREADABLE {p}"\n' for p in aliases)
        + f'echo "HOME-ENTRIES $(ls -A "{home}" | wc -l)"\n'
        + "sha256sum /etc/hosts /usr/bin/env >/dev/null && echo TOOLS-OK\n"
        + f"echo {RAN}\n",
    )
    assert result.exit_code == 0 and RAN in out and "TOOLS-OK" in out
    for path in aliases:
        assert hashlib.sha256(path.read_bytes()).hexdigest() not in out
        assert f"UNREADABLE {path}" in out
    assert "HOME-ENTRIES 0" in out


@pytest.mark.parametrize("kind", ["local", "auto"])
def test_a_step_cannot_write_a_file_past_max_file_mb(tmp_path: Path, kind: str) -> None:
    """One file may not fill the bot's disk: past ``[runner] max_file_mb`` the kernel stops
    the writer (SIGXFSZ), and core dumps (which would hold the step's secrets) are off. The
    same under ``auto`` when it falls back to the sandbox (no engine answers here)."""
    settings = make_settings(tmp_path / "data", kind, step_limits=StepLimits(max_file_mb=1))
    workspace = Workspace.create(tmp_path / "data" / "work" / "b", tmp_path / "data" / "c")
    session = select_runner(settings, MemoryLog()).open(None, {}, workspace, None, MemoryLog())
    result, out = run(
        session,
        "set +e\nhead -c 3000000 /dev/zero > big; echo \"rc=$?\"\n"
        "echo \"core=$(ulimit -c)\"\nhead -c 500000 /dev/zero > small; echo small=$?",
    )
    assert result.exit_code == 0, out
    assert "rc=0" not in out and "core=0" in out and "small=0" in out, out
    assert (workspace.source / "big").stat().st_size <= 1024 * 1024
    assert (workspace.source / "small").stat().st_size == 500000


def test_a_path_a_step_exports_never_chooses_what_the_bot_launches(
    host: Host, tmp_path: Path
) -> None:
    """PATH is synced between steps (Wercker's one shell). A step that puts fake
    ``prlimit``, ``bwrap`` and shells first on PATH must not get the bot to start them
    outside the sandbox for the next step: the bot launches those by absolute path."""
    escaped = tmp_path / "escaped"
    fakes = "prlimit bwrap bash sh"
    result, out = run(
        host.session,
        'mkdir -p "$HOME/bin"\n'
        f"for name in {fakes}; do\n"
        f'  printf "#!/bin/sh\\ntouch {escaped} 2>/dev/null\\nexit 0\\n" > "$HOME/bin/$name"\n'
        '  chmod +x "$HOME/bin/$name"\n'
        "done\n"
        'export PATH="$HOME/bin:$PATH"\n'
        f"echo {RAN}\n",
    )
    assert result.exit_code == 0 and RAN in out
    synced = {"PATH": result.env["PATH"]}
    first = synced["PATH"].split(":")[0]
    assert first.endswith("/bin") and first not in os.environ["PATH"].split(":")
    result, out = run(host.session, f"echo {RAN}-again\n", env=synced)
    assert result.exit_code == 0 and f"{RAN}-again" in out
    assert not escaped.exists()
