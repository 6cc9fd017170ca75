import time
from pathlib import Path

import pytest

from bot.errors import StepError
from bot.logs import MemoryLog
from bot.masking import Masker
from bot.runners.base import Timeouts, Workspace
from bot.runners.local import LocalRunner, LocalSession


@pytest.fixture
def session(tmp_path: Path) -> LocalSession:
    ws = Workspace.create(tmp_path / "ws", tmp_path / "cache")
    return LocalRunner().open(None, {"BOX_VAR": "box"}, ws, None, MemoryLog())


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
    import signal
    import subprocess
    import sys

    project = tmp_path / "p"
    project.mkdir()
    pidfile = tmp_path / "step.pid"
    (project / "wercker.yml").write_text(
        "build:\n  steps:\n    - script:\n        code: |\n"
        f"          sleep 300 &\n          echo $! > {pidfile}\n          wait\n"
    )
    bot = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "run", str(project), "--runner", "local"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "WERCKER_BOT_CONFIG": ""},
    )
    deadline = time.monotonic() + 20
    while not pidfile.exists() or not pidfile.read_text().strip():
        assert time.monotonic() < deadline, "the step never started"
        time.sleep(0.1)
    pid = int(pidfile.read_text())
    os.kill(bot.pid, signal.SIGKILL)
    bot.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)
    pytest.fail("the step outlived the bot")
