"""The bubblewrap (``bwrap``) sandbox every step of the local runner runs in.

One job: build the ``bwrap`` command line for a step (``Sandbox.launch``) and find out, once
per process, whether such a sandbox works on this host (``find_sandbox``).

What a sandboxed step sees, and nothing else (README, "Runners", says the same):

- its own PID, IPC, UTS (and, where the kernel allows, cgroup) namespaces, a fresh ``/proc``,
  a minimal ``/dev`` and a private tmpfs ``/tmp``; ``/`` itself is read-only. bwrap is pid 1
  of the namespace: when the step's shell exits, the kernel kills whatever the step left
  behind (``&``, ``setsid``, double forks), and ``--die-with-parent`` kills it all if the
  bot dies;
- an unprivileged user (uid/gid 1000, "wercker") in a user namespace, with no capabilities
  and no further user namespaces. On the host its files belong to the bot's own uid, so the
  bot can read and remove what a step wrote;
- read-only: ``/usr`` and the merged-usr links (``/bin``, ``/lib``, ... as they are on the
  host), the whitelisted ``/etc`` entries of ``sandbox_paths.ETC_ENTRIES`` that exist, a
  ``/etc/passwd`` and ``/etc/group`` written for the sandbox, and the ``[runner]
  sandbox_expose`` paths;
- hidden inside those (``Sandbox.hide``, given by the caller): the bot's own files that lie
  under a tree the sandbox shows (its config under ``/usr/local/etc``, a ``data_dir`` under
  ``/usr/local/var``, an ssh key under ``/etc/ssl``, its home): a directory becomes an empty
  read-only tmpfs, any other file an unreadable ``/dev/null``. A shown path inside a hidden
  directory (an exposed tool dir in the bot's home) is shown again, and a hidden path inside
  that hidden again: the deepest one wins, hiding at equal depth;
- read-write, at their host paths: the directories the runner passes as ``writable`` (the
  pipeline's source, output, cache, home and the step's scratch directory);
- the host's network: it is not unshared, because steps fetch dependencies.

Not the rest of ``/etc`` (host keys, the bot's env files), the bot's processes, environment,
config file, ``data_dir`` (store, other repositories' workspaces and caches) or home.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bot.errors import ConfigError
from bot.runners.sandbox_paths import hiding_binds, system_binds

SANDBOX_UID = 1000
SANDBOX_GID = 1000
SANDBOX_USER = "wercker"

PROBE_TIMEOUT = 15.0

_SHELLS = ("/bin/bash", "/bin/sh")


@dataclass(frozen=True)
class Sandbox:
    """A working bwrap at ``bwrap`` and the extra read-only host paths (``expose``).

    ``disable_userns`` adds ``--disable-userns`` (bwrap ≥ 0.8), so a step cannot make
    nested user namespaces to reach kernel interfaces meant for root.

    ``hide``: host paths only the bot may read (its config, ``data_dir``, ssh keys, home).
    Each one that exists when a step starts and lies, links resolved, under something the
    sandbox shows is covered there; the step's ``writable`` directories are bound after
    that, so a workspace and cache inside a hidden ``data_dir`` stay at their host paths.
    """

    bwrap: str
    expose: tuple[str, ...] = ()
    disable_userns: bool = True
    hide: tuple[str, ...] = ()

    @property
    def shell(self) -> str:
        """The shell steps run in: bash where the host has it (the sandbox shows the host's
        ``/bin``), else ``/bin/sh``."""
        return next((s for s in _SHELLS if os.path.exists(s)), _SHELLS[-1])

    def launch(
        self, command: Sequence[str], *, writable: Sequence[Path | str], chdir: str, home: str
    ) -> Launch:
        """The argv that runs ``command`` in the sandbox with ``writable`` bound read-write at
        their own paths, starting in ``chdir`` (one of them) with ``home`` in
        ``/etc/passwd``. The step's environment is the one given to ``Popen`` (bwrap
        passes it on unchanged); values never go into the argv, which other host users can
        read. The caller must start it with ``pass_fds=launch.pass_fds`` and call
        ``close()`` afterwards."""
        launch = Launch()
        try:
            argv = [self.bwrap, *self._namespaces()]
            system, shown = system_binds()
            argv += system
            passwd = (
                "root:x:0:0:root:/root:/bin/sh\n"
                f"{SANDBOX_USER}:x:{SANDBOX_UID}:{SANDBOX_GID}:wercker step:{home}:{self.shell}\n"
                "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
            )
            group = f"root:x:0:\n{SANDBOX_USER}:x:{SANDBOX_GID}:\nnogroup:x:65534:\n"
            for name, text in (("passwd", passwd), ("group", group)):
                fd = launch.data_fd(text)
                argv += ["--perms", "0644", "--ro-bind-data", str(fd), f"/etc/{name}"]
            argv += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--tmpfs", "/dev/shm"]
            for path in self.expose:
                argv += ["--ro-bind-try", path, path]
            covers, emptied = hiding_binds([*shown, *self.expose], self.hide)
            argv += covers
            # Parents before children, so a bind inside another one is not hidden by it.
            for path in sorted({str(p) for p in writable}, key=lambda p: (p.count("/"), p)):
                argv += ["--bind", path, path]
            # The hiding tmpfs stay writable until the binds above made their mount points.
            for path in emptied:
                argv += ["--remount-ro", path]
            argv += ["--remount-ro", "/", "--chdir", chdir]
            argv += ["--json-status-fd", str(launch.status_fd()), "--", *command]
            launch.argv = argv
            return launch
        except BaseException:
            launch.close()
            raise

    def _namespaces(self) -> list[str]:
        args = [
            "--unshare-user",
            "--uid",
            str(SANDBOX_UID),
            "--gid",
            str(SANDBOX_GID),
            "--unshare-pid",
            "--unshare-ipc",
            "--unshare-uts",
            "--unshare-cgroup-try",
            "--die-with-parent",
            "--new-session",
            "--cap-drop",
            "ALL",
        ]
        if self.disable_userns:
            args.append("--disable-userns")
        return args


@dataclass
class Launch:
    """One sandboxed command: ``argv`` and the file descriptors it needs (``pass_fds``).
    ``ran()`` says, after the process exited, whether the step's command really ran (bwrap
    reports its exit code only then); ``False`` means the sandbox could not be set up."""

    argv: list[str] = field(default_factory=list)
    pass_fds: tuple[int, ...] = ()
    _status_read: int | None = None
    _own: list[int] = field(default_factory=list)

    def data_fd(self, text: str) -> int:
        """A pipe holding ``text`` (small: it must fit the pipe buffer), read end passed."""
        read, write = os.pipe()
        self._own.append(read)
        try:
            os.write(write, text.encode("utf-8"))
        finally:
            os.close(write)
        self.pass_fds = (*self.pass_fds, read)
        return read

    def status_fd(self) -> int:
        read, write = os.pipe()
        self._own += [read, write]
        os.set_blocking(read, False)
        self._status_read = read
        self.pass_fds = (*self.pass_fds, write)
        return write

    def started(self) -> None:
        """Call once the process is running: drops the parent's copies of the fds bwrap now
        holds, so the status pipe reaches end-of-file when bwrap exits."""
        for fd in self.pass_fds:
            self._close(fd)

    def ran(self) -> bool:
        if self._status_read is None:
            return False
        data = b""
        while len(data) < 65536:
            try:
                chunk = os.read(self._status_read, 4096)
            except BlockingIOError:
                break
            if not chunk:
                break
            data += chunk
        return b'"exit-code"' in data

    def close(self) -> None:
        for fd in list(self._own):
            self._close(fd)

    def _close(self, fd: int) -> None:
        if fd in self._own:
            self._own.remove(fd)
            with contextlib.suppress(OSError):
                os.close(fd)


_lock = threading.Lock()
_probed: dict[tuple[str, tuple[str, ...], tuple[str, ...]], tuple[Sandbox | None, str]] = {}


def find_sandbox(
    expose: Sequence[str] = (), hide: Sequence[str] = ()
) -> tuple[Sandbox | None, str]:
    """The sandbox the local runner can use here, showing ``expose`` and hiding ``hide``
    (see ``Sandbox``), or ``None``, and a few words on why (for the build log and for
    errors). ``bwrap`` is looked up on ``PATH``; a found bwrap is probed once per process
    and set of paths (it runs ``true`` in a sandbox like a step's) and the answer is cached."""
    found = shutil.which("bwrap")
    if found is None:
        return None, "bwrap was not found on PATH"
    key = (os.path.realpath(found), tuple(expose), tuple(hide))
    with _lock:
        if key not in _probed:
            _probed[key] = _probe(found, tuple(expose), tuple(hide))
        return _probed[key]


def forget_probes() -> None:
    """Drops the cached probe answers (tests; a host where bubblewrap was just installed)."""
    with _lock:
        _probed.clear()


def _probe(
    bwrap: str, expose: tuple[str, ...], hide: tuple[str, ...]
) -> tuple[Sandbox | None, str]:
    version = _version(bwrap)
    sandbox = Sandbox(bwrap, expose, hide=hide)
    ok, why = _try(sandbox)
    if not ok and "disable-userns" in why:
        # bwrap older than 0.8: the sandbox still holds, without that extra lock.
        sandbox = Sandbox(bwrap, expose, disable_userns=False, hide=hide)
        ok, why = _try(sandbox)
    if not ok:
        return None, f"{version} at {bwrap} cannot make a sandbox here: {why}"
    return sandbox, f"{version} at {bwrap}"


def _version(bwrap: str) -> str:
    try:
        out = subprocess.run(
            [bwrap, "--version"], capture_output=True, text=True, timeout=PROBE_TIMEOUT
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        out = ""
    return out or "bwrap"


def _try(sandbox: Sandbox) -> tuple[bool, str]:
    with tempfile.TemporaryDirectory(prefix="wb-sandbox-probe-") as scratch:
        launch = sandbox.launch(
            [sandbox.shell, "-c", "true"], writable=[scratch], chdir=scratch, home=scratch
        )
        try:
            proc = subprocess.run(
                launch.argv,
                pass_fds=launch.pass_fds,
                env={"PATH": "/usr/bin:/bin"},
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=PROBE_TIMEOUT,
            )
        except OSError as err:
            return False, f"cannot run it: {err.strerror}"
        except subprocess.TimeoutExpired:
            return False, f"it did not finish within {PROBE_TIMEOUT:.0f} s"
        finally:
            launch.close()
    if proc.returncode == 0:
        return True, ""
    lines = proc.stderr.decode("utf-8", "replace").strip().splitlines()
    return False, (lines[-1] if lines else f"exit {proc.returncode}")


def check_expose(expose: Sequence[str], data_dir: Path, private: Sequence[Path]) -> None:
    """Raises ``ConfigError`` when a ``sandbox_expose`` path would show steps what only the
    bot may read: ``data_dir`` (the path itself, a directory holding it, or anything inside
    it: the store, other repositories' workspaces and caches) or one of ``private`` (the
    config file, ssh keys, the bot's home: the path itself or a directory holding it)."""
    data = Path(os.path.realpath(data_dir))
    hidden = [Path(os.path.realpath(p)) for p in private]
    for raw in expose:
        shown = Path(os.path.realpath(raw))
        clash = next((p for p in [data, *hidden] if shown == p or shown in p.parents), None)
        if clash is None and data in shown.parents:
            clash = data
        if clash is not None:
            raise ConfigError(
                f"{raw} would show sandboxed steps {clash}, which only the bot may read",
                "runner.sandbox_expose",
            )
