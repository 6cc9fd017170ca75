"""The local runner: steps run on the host in a per-pipeline workspace laid out like
``/pipeline``. For hosts with no Docker daemon (a PaaS dyno, a locked-down VM)."""

from __future__ import annotations

import os
import select
import shutil
import signal
import subprocess
from pathlib import Path

from bot.errors import InfrastructureError, StepError
from bot.logs import Log
from bot.pushers.model import ImageConfig, ImageRef, PushResult, Target
from bot.runners.base import GuestPaths, ScriptResult, Timeouts, Workspace
from bot.runners.output import OutputRelay, Watchdog
from bot.runners.wrapper import WRAPPER, parse_env_dump, wants_set_e

# The bot's own environment (tokens, webhook secret) must never reach a step: only these
# host variables are passed through.
PASSTHROUGH = ("PATH", "LANG", "LC_ALL", "TZ")


class LocalRunner:
    kind = "local"

    def open(
        self,
        box: ImageRef | None,
        box_env: dict[str, str],
        workspace: Workspace,
        base_path: str | None,
        log: Log,
    ) -> LocalSession:
        if base_path:
            log.warn(
                f"base-path {base_path} applies inside a box container; the local runner keeps "
                f"the source at {workspace.source}"
            )
        return LocalSession(workspace, box_env)


class LocalSession:
    """A workspace on the host; ``paths`` are host paths."""

    kind = "local"
    can_commit = False

    def __init__(self, workspace: Workspace, box_env: dict[str, str]) -> None:
        self.workspace = workspace
        self.box_env = box_env
        self.paths = GuestPaths(
            pipeline=str(workspace.root),
            root=str(workspace.source),
            source=str(workspace.source),
            output=str(workspace.output),
            cache=str(workspace.cache),
        )
        self._counter = 0
        self.home = workspace.helper / "home"
        self.home.mkdir(parents=True, exist_ok=True)
        # Env dumps hold secrets: only the bot's user may read the helper dir.
        workspace.helper.chmod(0o700)

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
        self._counter += 1
        helper = self.workspace.helper
        script = helper / f"step-{self._counter}.sh"
        script.write_text(code, encoding="utf-8")
        wrapper = helper / "wrapper.sh"
        wrapper.write_text(WRAPPER, encoding="utf-8")
        dump = helper / f"env-{self._counter}"
        message = helper / f"message-{self._counter}"
        full_env = {k: os.environ[k] for k in PASSTHROUGH if k in os.environ}
        full_env.update({"HOME": str(self.home), "TERM": "xterm-256color"})
        full_env.update(self.box_env)
        full_env.update(env)
        full_env.update(secrets)
        full_env.update(
            WB_ENV_DUMP=str(dump),
            WB_MESSAGE_FILE=str(message),
            WB_CWD=cwd,
            WB_SET_E="1" if wants_set_e(code) else "0",
            WB_SCRIPT=str(script),
            WB_BOT_PID=str(os.getpid()),
        )
        shell = shutil.which("bash") or "/bin/sh"
        try:
            proc = subprocess.Popen(
                [shell, str(wrapper)],
                env=full_env,
                cwd=str(self.workspace.source),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as err:
            raise InfrastructureError(f"cannot start {shell}: {err.strerror}") from None
        timed_out = _pump(proc, timeouts, log)
        exit_code = proc.wait()
        # Anything the step left running in the background would outlive the build with
        # its secrets in the environment: the step's whole process group goes with it.
        _kill_group(proc, sig=signal.SIGKILL)
        exported = parse_env_dump(dump.read_bytes()) if dump.exists() else {}
        if message.exists():
            text = message.read_text(encoding="utf-8", errors="replace").strip()
            if text and exit_code != 0 and not timed_out:
                raise StepError(text, exit_code)
        return ScriptResult(exit_code=exit_code, timed_out=timed_out, env=exported)

    def collect(self, guest_dir: str) -> Path:
        return Path(guest_dir)

    def commit_and_push(self, config: ImageConfig, target: Target, log: Log) -> PushResult:
        raise InfrastructureError("the local runner cannot commit a container")

    def restart(self, log: Log) -> None:
        """Nothing to restart: every step is its own process."""

    def close(self) -> None:
        """The workspace is removed by the build; nothing else is held."""


def _pump(proc: subprocess.Popen[bytes], timeouts: Timeouts, log: Log) -> str | None:
    """Streams output to the log in whole lines (so masking sees a secret in one piece);
    kills the process group on a timeout and says which."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    relay = OutputRelay(log)
    watchdog = Watchdog(timeouts, relay)
    try:
        while True:
            ready, _, _ = select.select([fd], [], [], watchdog.wait_seconds(1.0))
            if ready:
                chunk = os.read(fd, 65536)
                if not chunk:
                    return None
                watchdog.output(chunk)
                continue
            which = watchdog.expired()
            if which:
                _kill_group(proc)
                return which
    finally:
        relay.close()


def _kill_group(proc: subprocess.Popen[bytes], sig: signal.Signals = signal.SIGTERM) -> None:
    try:
        os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
