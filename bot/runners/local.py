"""The local runner: steps run on this host, for hosts with no Docker daemon (a PaaS dyno, a
locked-down VM).

With a ``Sandbox`` (runner kind ``local``) every step runs in a bubblewrap sandbox
(``bot.runners.sandbox`` lists what it sees): the pipeline's source, output, cache and home
read-write at their host paths, the host's tools read-only, never the bot's processes,
environment, config, store or other repositories. Without one (kind ``local-unsafe``, only
when the config says so) a step is a plain child process of the bot and can read
everything the bot can; it still gets an environment built from scratch.

Either way the bot writes nothing where a step can write: the wrapper and the code travel
as arguments (``wrapper.command``), the step writes its script, env dump and message in a
fresh scratch directory the bot made, and the bot reads them back through a directory fd
without following links (``_read_left``).
"""

from __future__ import annotations

import os
import secrets as token
import select
import shutil
import signal
import stat
import subprocess
import time
from pathlib import Path

from bot.errors import InfrastructureError, StepError
from bot.images import ImageRef
from bot.logs import Log
from bot.runners.base import GuestPaths, ScriptResult, Timeouts, Workspace
from bot.runners.output import OutputRelay, Watchdog
from bot.runners.sandbox import Sandbox
from bot.runners.staging import check_name, copy_dir
from bot.runners.wrapper import (
    MAX_HELPER_BYTES,
    command,
    parse_env_dump,
    parse_message,
    wants_set_e,
)

# The bot's own environment (tokens, webhook secret) must never reach a step: only these
# host variables are passed through.
PASSTHROUGH = ("PATH", "LANG", "LC_ALL", "TZ")
MAX_FILE_MB = 10240
"""The largest file a step may write (``RLIMIT_FSIZE``, ``[runner] max_file_mb``): a step
filling the bot's disk with one file is stopped with SIGXFSZ ("File size limit exceeded")."""

DRAIN_SECONDS = 1.0
"""How long output is still read once the step's shell has exited. Only the unsandboxed
runner needs it: there a process that escaped the step's group can hold the output open;
in the sandbox the output closes when the namespace dies with the shell."""


class LocalRunner:
    """Opens sessions on this host. ``sandbox`` is required for kind ``local``; ``None``
    makes the ``local-unsafe`` runner (the caller has logged why)."""

    def __init__(self, sandbox: Sandbox | None, max_file_mb: int = MAX_FILE_MB) -> None:
        self.sandbox = sandbox
        self.max_file_mb = max_file_mb
        self.kind = "local" if sandbox is not None else "local-unsafe"

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
        return LocalSession(workspace, box_env, self.sandbox, self.max_file_mb)


class LocalSession:
    """A workspace on the host; ``paths`` are host paths, and in the sandbox the step sees
    the same directories at the same paths."""

    can_commit = False

    def __init__(
        self,
        workspace: Workspace,
        box_env: dict[str, str],
        sandbox: Sandbox | None,
        max_file_mb: int = MAX_FILE_MB,
    ) -> None:
        self.workspace = workspace
        self.box_env = box_env
        self.sandbox = sandbox
        self.max_file_mb = max_file_mb
        self.kind = "local" if sandbox is not None else "local-unsafe"
        self.paths = GuestPaths(
            pipeline=str(workspace.root),
            root=str(workspace.source),
            source=str(workspace.source),
            output=str(workspace.output),
            cache=str(workspace.cache),
        )
        # The step's home lives for the whole pipeline, like a box container's.
        self.home = workspace.helper / "home"
        self.home.mkdir(parents=True, exist_ok=True)
        self._scratch = workspace.helper / "step-out"
        self._scratch.mkdir(mode=0o700, exist_ok=True)
        # Env dumps hold secrets: only the bot's user may read the helper dir. In the
        # sandbox only ``home`` and one scratch dir per step are visible (and writable).
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
        shell = self.sandbox.shell if self.sandbox else (shutil.which("bash") or "/bin/sh")
        argv = command(shell, code)
        scratch = self._scratch / token.token_hex(8)
        scratch.mkdir(mode=0o700)
        dir_fd = os.open(scratch, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            full_env = {k: os.environ[k] for k in PASSTHROUGH if k in os.environ}
            full_env.update({"HOME": str(self.home), "TERM": "xterm-256color"})
            full_env.update(self.box_env)
            full_env.update(env)
            full_env.update(secrets)
            full_env.update(
                WB_ENV_DUMP=str(scratch / "env"),
                WB_MESSAGE_FILE=str(scratch / "message"),
                WB_CWD=cwd,
                WB_SET_E="1" if wants_set_e(code) else "0",
                WB_SCRIPT=str(scratch / "script"),
            )
            exit_code, timed_out = self._run(argv, full_env, scratch, timeouts, log)
            dump = _read_left(dir_fd, "env", log)
            message = _read_left(dir_fd, "message", log)
        finally:
            os.close(dir_fd)
            # The dump holds secrets; nothing in the sandbox runs any more to race this,
            # and rmtree does not follow links.
            shutil.rmtree(scratch, ignore_errors=True)
        exported = parse_env_dump(dump) if dump is not None else {}
        text = parse_message(message) if message is not None else ""
        if text and exit_code != 0 and not timed_out:
            raise StepError(text, exit_code)
        return ScriptResult(exit_code=exit_code, timed_out=timed_out, env=exported)

    def _run(
        self,
        argv: list[str],
        env: dict[str, str],
        scratch: Path,
        timeouts: Timeouts,
        log: Log,
    ) -> tuple[int, str | None]:
        """Runs ``argv`` (sandboxed when there is a sandbox) with its output in the log:
        the exit code and the timeout that killed it, if any."""
        ws = self.workspace
        launch = None
        if self.sandbox is not None:
            launch = self.sandbox.launch(
                argv,
                writable=[ws.source, ws.output, ws.cache, self.home, scratch],
                chdir=str(ws.source),
                home=str(self.home),
            )
            argv = launch.argv
        argv = limited(argv, self.max_file_mb)
        try:
            try:
                proc = subprocess.Popen(
                    argv,
                    env=env,
                    cwd="/" if launch else str(ws.source),
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    pass_fds=launch.pass_fds if launch else (),
                )
            except OSError as err:
                raise InfrastructureError(f"cannot start {argv[0]}: {err.strerror}") from None
            if launch:
                launch.started()
            with proc:
                timed_out = _pump(proc, timeouts, log)
                exit_code = proc.wait()
                # Unsandboxed, whatever the step left in its process group goes with it
                # (in the sandbox the kernel already killed the whole pid namespace).
                _kill_group(proc, sig=signal.SIGKILL)
            if launch and not timed_out and not launch.ran():
                raise InfrastructureError(
                    "bubblewrap could not set up the step's sandbox (its message is in the "
                    "log above)"
                )
            return exit_code, timed_out
        finally:
            if launch:
                launch.close()

    def collect(self, guest_dir: str) -> Path:
        return Path(guest_dir)

    def put_dir(self, source: Path, name: str) -> str:
        """``Session.put_dir``: a fresh ``<home>/.wercker-step-<name>`` (hidden, so a step
        listing its home does not see it), files read-only."""
        return str(copy_dir(source, self.home, f".wercker-step-{check_name(name)}"))

    def restart(self, log: Log) -> None:
        """Nothing to restart: every step is its own process."""

    def close(self) -> None:
        """The workspace is removed by the build; nothing else is held."""


def _read_left(dir_fd: int, name: str, log: Log) -> bytes | None:
    """What the step left in ``name`` of its scratch dir, or ``None``: read relative to the
    bot's own fd of that dir, never through a link, never from anything but a regular file
    (``O_NONBLOCK``: a FIFO must not hang the bot), never more than ``MAX_HELPER_BYTES``."""
    try:
        fd = os.open(
            name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dir_fd
        )
    except FileNotFoundError:
        return None
    except OSError as err:
        log.warn(f"ignored the step's {name} file: {err.strerror}")
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            log.warn(f"ignored the step's {name} file: not a regular file")
            return None
        chunks: list[bytes] = []
        size = 0
        while size <= MAX_HELPER_BYTES:
            chunk = os.read(fd, min(65536, MAX_HELPER_BYTES + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > MAX_HELPER_BYTES:
            log.warn(f"ignored the step's {name} file: larger than {MAX_HELPER_BYTES // 1024} KiB")
            return None
        return b"".join(chunks)
    finally:
        os.close(fd)


def limited(argv: list[str], max_file_mb: int) -> list[str]:
    """``argv`` under util-linux's ``prlimit``: no file over ``max_file_mb`` and no core
    dumps (a core of a step holds its secrets) for the step and everything it starts. A
    tool, not ``preexec_fn``: the bot is threaded, and forking Python code there is unsafe."""
    prlimit = shutil.which("prlimit")
    if prlimit is None:
        raise InfrastructureError(
            "prlimit (util-linux) is missing: it bounds what a step may write; install "
            "util-linux"
        )
    size = max_file_mb * 1024 * 1024
    return [prlimit, f"--fsize={size}:{size}", "--core=0:0", "--", *argv]


def _pump(proc: subprocess.Popen[bytes], timeouts: Timeouts, log: Log) -> str | None:
    """Streams output to the log in whole lines (so masking sees a secret in one piece);
    kills the process group on a timeout, or when the attempt is aborted
    (``Timeouts.abort``: the same kill, reported ``ABORTED``), and says which. Reading
    stops at end of output, or ``DRAIN_SECONDS`` after the step's shell exited (a leftover
    process holding the output open must not hang the step)."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    relay = OutputRelay(log)
    watchdog = Watchdog(timeouts, relay)
    drain_until: float | None = None
    try:
        while True:
            wait = watchdog.wait_seconds(0.2) if drain_until is None else 0.05
            ready, _, _ = select.select([fd], [], [], wait)
            if ready:
                chunk = os.read(fd, 65536)
                if not chunk:
                    return None
                watchdog.output(chunk)
            if drain_until is None and proc.poll() is not None:
                drain_until = time.monotonic() + DRAIN_SECONDS
                # Unsandboxed: what stayed in the step's group dies now, and its end of
                # the output with it.
                _kill_group(proc, sig=signal.SIGKILL)
            if drain_until is not None:
                if time.monotonic() >= drain_until:
                    return None
            elif not ready or watchdog.aborted():
                # An abort is looked at even while the step prints without pause.
                which = watchdog.expired()
                if which:
                    _kill_group(proc)
                    return which
    finally:
        relay.close()


def _kill_group(proc: subprocess.Popen[bytes], sig: signal.Signals = signal.SIGTERM) -> None:
    """Signals the step's process group (in the sandbox: bwrap itself, whose death takes
    the whole sandbox with it through ``--die-with-parent``)."""
    try:
        os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
