import os
import secrets
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from bot.errors import StepError
from bot.logs import MemoryLog
from bot.masking import Masker
from bot.runners.base import ABORTED, Abort, Timeouts, Workspace
from bot.runners.local import LocalRunner, LocalSession
from bot.runners.sandbox import find_sandbox


@pytest.fixture(params=["sandboxed", "unsafe"])
def session(tmp_path: Path, request: pytest.FixtureRequest) -> LocalSession:
    """Both local runners keep the same step contract."""
    sandbox = None
    if request.param == "sandboxed":
        sandbox, why = find_sandbox()
        assert sandbox is not None, f"bubblewrap is needed for these tests: {why}"
    ws = Workspace.create(tmp_path / "ws", tmp_path / "cache")
    return LocalRunner(sandbox).open(None, {"BOX_VAR": "box"}, ws, None, MemoryLog())


def run(session: LocalSession, code: str, **kw: object) -> tuple[int, str | None, dict, str]:
    log = MemoryLog(Masker(["s3cr3t-value"]))
    result = session.run_script(
        code,
        env=kw.get("env", {"BRANCH": "feature/$(touch /tmp/pwned)"}),  # type: ignore[arg-type]
        secrets={"PASSWORD": "s3cr3t-value"},
        cwd=session.paths.source,
        timeouts=kw.get("timeouts", Timeouts(30, 30)),  # type: ignore[arg-type]
        log=log,
    )
    return result.exit_code, result.timed_out, result.env, log.text


def test_real_exit_code_and_set_e(session: LocalSession) -> None:
    code, _, _, out = run(session, "false\necho not reached")
    assert code == 1 and "not reached" not in out
    code, _, _, _ = run(session, "exit 7")
    assert code == 7


def test_shebang_disables_set_e(session: LocalSession) -> None:
    code, _, _, out = run(session, "#!/bin/bash\nfalse\necho reached")
    assert code == 0 and "reached" in out


def test_values_arrive_as_environment_never_as_shell_text(session: LocalSession) -> None:
    marker = Path("/tmp/pwned")
    marker.unlink(missing_ok=True)
    code, _, _, out = run(session, 'echo "branch=$BRANCH box=$BOX_VAR"')
    assert code == 0 and "branch=feature/$(touch /tmp/pwned) box=box" in out
    assert not marker.exists()


def test_secrets_reach_the_step_but_not_the_log(session: LocalSession) -> None:
    code, _, _, out = run(session, 'echo "pw=$PASSWORD"; test "$PASSWORD" = s3cr3t-value')
    assert code == 0 and "pw=****" in out and "s3cr3t-value" not in out


def test_exports_are_returned_for_env_sync(session: LocalSession) -> None:
    _, _, env, _ = run(session, "export NEW_THING=42")
    assert env["NEW_THING"] == "42"


def test_bot_environment_does_not_leak(
    session: LocalSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_should_not_leak")
    _, _, env, out = run(session, "env")
    assert "ghp_should_not_leak" not in out and "GITHUB_TOKEN" not in env


def test_no_response_timeout_kills_and_names_itself(session: LocalSession) -> None:
    started = time.monotonic()
    code, which, _, _ = run(session, "echo hi; sleep 30", timeouts=Timeouts(60, 1.0))
    assert which == "no-response-timeout" and code != 0
    assert time.monotonic() - started < 10


def test_command_timeout_with_output_still_flowing(session: LocalSession) -> None:
    _, which, _, _ = run(
        session, "while true; do echo tick; sleep 0.2; done", timeouts=Timeouts(1.5, 60)
    )
    assert which == "command-timeout"


def test_fail_helper_sets_the_message(session: LocalSession) -> None:
    with pytest.raises(StepError, match="tests are red") as err:
        run(session, 'fail "tests are red"')
    assert err.value.exit_code == 1


def test_secret_split_across_writes_is_still_masked(session: LocalSession) -> None:
    code, _, _, out = run(session, "printf 's3cr3t'; sleep 0.1; printf -- '-value\\n'")
    assert code == 0 and "s3cr3t-value" not in out and "****" in out


def test_steps_die_with_the_bot(tmp_path: Path) -> None:
    """Even a SIGKILLed bot leaves no step running (with secrets in its environment)."""
    import os
    import secrets
    import signal
    import subprocess
    import sys

    project = tmp_path / "p"
    project.mkdir()
    # The sandboxed step cannot write outside its workspace: it is found by its command line.
    marker = f"300.{secrets.randbelow(10**9):09d}"
    (project / "wercker.yml").write_text(
        "build:\n  steps:\n    - script:\n        code: |\n"
        f"          sleep {marker} &\n          wait\n"
    )
    bot = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "run", str(project), "--runner", "local"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "WERCKER_BOT_CONFIG": ""},
        cwd=tmp_path,
    )

    # The step's own ``sleep``, not the sandbox launcher whose argv holds the step's code:
    # the bot is killed once the step really runs in its sandbox.
    pattern = f"^sleep {marker}$"

    def running() -> bool:
        found = subprocess.run(["pgrep", "-f", pattern], capture_output=True)
        return found.returncode == 0

    deadline = time.monotonic() + 20
    while not running():
        assert bot.poll() is None, "the bot ended before the step started"
        assert time.monotonic() < deadline, "the step never started"
        time.sleep(0.1)
    os.kill(bot.pid, signal.SIGKILL)
    bot.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if not running():
            return
        time.sleep(0.1)
    left = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True)
    for pid in left.stdout.split():
        os.kill(int(pid), signal.SIGKILL)
    pytest.fail("the step outlived the bot")


def test_the_step_writes_its_dirs_and_the_bot_can_clean_up(session: LocalSession) -> None:
    """Source, output, cache and home are the step's, at the paths ``WERCKER_*_DIR`` give;
    what it leaves there (even a directory it locked) belongs to the bot's uid on the host."""
    paths = session.paths
    code, _, _, out = run(
        session,
        'echo src > "$SRC/made-by-step"\n'
        'mkdir -p "$OUT/locked" && echo out > "$OUT/locked/f" && chmod 500 "$OUT/locked"\n'
        'echo cached > "$CACHE/kept"\n'
        'echo home > "$HOME/.kept"\n'
        "echo done\n",
        env={"SRC": paths.source, "OUT": paths.output, "CACHE": paths.cache},
    )
    assert code == 0 and "done" in out
    assert (Path(paths.source) / "made-by-step").read_text() == "src\n"
    assert (Path(paths.cache) / "kept").read_text() == "cached\n"
    locked = Path(paths.output) / "locked"
    assert (locked / "f").read_text() == "out\n" and locked.stat().st_uid == os.getuid()
    locked.chmod(0o700)
    (locked / "f").unlink()
    _, _, _, out = run(session, 'cat "$HOME/.kept"')
    assert "home" in out


def test_a_background_server_does_not_hold_the_step(session: LocalSession) -> None:
    """``server &`` before the tests is common: the step ends when its shell does."""
    started = time.monotonic()
    code, which, _, out = run(session, "sleep 30 &\necho started", timeouts=Timeouts(60, 20))
    assert code == 0 and which is None and "started" in out
    assert time.monotonic() - started < 5


def test_local_unsafe_is_linted_like_local() -> None:
    """Both run on the host: ``internal/docker-build`` is an error for either."""
    from bot.wercker.lint import lint_for_runner
    from bot.wercker.parse import load_text

    wf, _ = load_text(
        "build:\n  steps:\n    - internal/docker-build:\n        image-name: x\n", "wercker.yml"
    )
    assert wf is not None
    local = [(p.severity, p.message) for p in lint_for_runner(wf, "local")]
    assert local and local == [(p.severity, p.message) for p in lint_for_runner(wf, "local-unsafe")]
    assert local[0][0] == "error"


def test_local_runner_kills_what_a_step_left_in_the_background(tmp_path: Path) -> None:
    from bot.logs import MemoryLog
    from bot.runners.base import Timeouts, Workspace
    from bot.runners.local import LocalRunner

    ws = Workspace.create(tmp_path / "ws", tmp_path / "cache")
    session = LocalRunner(None).open(None, {}, ws, None, MemoryLog())  # local-unsafe
    pidfile = tmp_path / "bg.pid"
    session.run_script(
        f"sleep 300 >/dev/null 2>&1 &\necho $! > {pidfile}",
        env={},
        secrets={},
        cwd=session.paths.source,
        timeouts=Timeouts(30, 30),
        log=MemoryLog(),
    )
    pid = int(pidfile.read_text())
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        pytest.fail("the background process outlived its step")
    assert oct(ws.helper.stat().st_mode & 0o777) == "0o700"


def _pids_with(marker: str) -> list[int]:
    """Host pids of the processes whose command line holds ``marker`` (sandboxed steps
    live in their own pid namespace: they are found by what they run, not by their pid)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if marker.encode() in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except OSError:  # gone meanwhile
            continue
    return found


def _abort_when(abort: Abort, ready: Callable[[], bool]) -> threading.Thread:
    """Sets ``abort`` (as a worker restart does) once ``ready()`` holds, from a thread."""

    def watch() -> None:
        deadline = time.monotonic() + 20
        while not ready() and time.monotonic() < deadline:
            time.sleep(0.05)
        abort.set("worker restarted", requeue=True)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def test_an_abort_kills_the_step_and_everything_it_started(session: LocalSession) -> None:
    marker = f"300.{secrets.randbelow(10**9):09d}"
    abort = Abort()
    # a background child, a grandchild under another shell, and the step's own sleep
    code = f"sleep {marker} &\nsh -c 'sleep {marker}; true' &\nsleep {marker}\n"
    own = os.getpid()
    _abort_when(abort, lambda: len([p for p in _pids_with(marker) if p != own]) >= 4)
    started = time.monotonic()
    code_, which, _, _ = run(session, code, timeouts=Timeouts(60, 60, abort=abort))
    assert which == ABORTED and code_ != 0
    assert time.monotonic() - started < 15
    deadline = time.monotonic() + 5
    while [p for p in _pids_with(marker) if p != own] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [p for p in _pids_with(marker) if p != own] == [], "a step process outlived the abort"


def test_an_abort_stops_a_step_that_prints_without_pause(session: LocalSession) -> None:
    abort = Abort()
    _abort_when(abort, lambda: True)
    started = time.monotonic()
    _, which, _, out = run(
        session, "while :; do echo tick; sleep 0.01; done", timeouts=Timeouts(60, 60, abort=abort)
    )
    assert which == ABORTED and "tick" in out
    assert time.monotonic() - started < 10
