"""A private Docker Engine for the tests that need one.

``dockerd`` (session scope) starts ``dockerd`` as root with its own socket, data root and exec
root under a short ``/tmp`` dir, with bridge networking and iptables off (containers run with
``--network none``), and the ``vfs`` storage driver (works in any sandbox, no overlay mounts).
It yields a ``Dockerd`` with ``.host`` (the ``unix://`` URL) and ``.client()``, and stops the
engine at the end of the session: SIGTERM, a wait, then SIGKILL.

Without root or without a ``dockerd`` binary the tests skip with the exact reason; under CI
(``CI`` set) they fail instead, because CI runs as root with ``docker.io`` installed.

``busybox_rootfs()`` and ``import_busybox()`` make a small box image from the host's static
busybox, for when no registry-backed image is at hand.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import signal
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from bot.runners.docker.engine import engine_available

STARTUP_SECONDS = 60.0
STOP_SECONDS = 20.0
BUSYBOX_APPLETS = (
    "sh", "ash", "cat", "echo", "ls", "env", "sleep", "mkdir", "kill", "rm", "cp", "mv", "id",
    "true", "false", "touch", "printf", "test", "[", "chmod", "chown", "pwd", "grep", "sed",
    "head", "tail", "wc", "ps", "find", "tr", "uname", "date", "hostname", "ln", "du", "stat",
)  # fmt: skip
BUSYBOX_CANDIDATES = ("/bin/busybox", "/usr/bin/busybox")


@dataclass
class Dockerd:
    """A running private engine. ``client()`` returns a new ``docker.DockerClient``."""

    host: str
    root: Path
    log_path: Path
    _clients: list[object] = field(default_factory=list)

    def client(self, timeout: float | None = 120.0):  # type: ignore[no-untyped-def]
        import docker

        client = docker.DockerClient(base_url=self.host, version="auto", timeout=timeout)
        self._clients.append(client)
        return client

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def _unavailable() -> str | None:
    """Why no private engine can run here, or ``None``."""
    if os.geteuid() != 0:
        return f"dockerd needs root; these tests run as uid {os.geteuid()}"
    if shutil.which("dockerd") is None:
        return "dockerd is not installed (no `dockerd` on PATH; apt-get install docker.io)"
    return None


def _skip_or_fail(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"CI must run the Docker Engine tests: {reason}")
    pytest.skip(reason)


def start_dockerd() -> tuple[subprocess.Popen[bytes], Dockerd]:
    """Starts a private engine and waits until it answers."""
    # A short path: unix socket paths are limited to 108 bytes, containerd's included.
    root = Path(tempfile.mkdtemp(prefix="wbd-", dir="/tmp"))
    host = f"unix://{root}/docker.sock"
    log_path = root / "dockerd.log"
    cmd = [
        "dockerd",
        "--bridge=none",
        "--iptables=false",
        "--ip-masq=false",
        "--storage-driver=vfs",
        f"--host={host}",
        f"--data-root={root / 'data'}",
        f"--exec-root={root / 'x'}",
        f"--pidfile={root / 'docker.pid'}",
    ]
    with open(log_path, "wb") as log_file:
        proc = subprocess.Popen(
            cmd,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    handle = Dockerd(host=host, root=root, log_path=log_path)
    deadline = time.monotonic() + STARTUP_SECONDS
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"dockerd exited with {proc.returncode}:\n{handle.log_tail()}")
        # The bot's own check: it closes its socket when the engine is not listening yet.
        if engine_available(host, timeout=5.0)[0]:
            return proc, handle
        if time.monotonic() > deadline:
            stop_dockerd(proc, handle)
            raise RuntimeError(
                f"dockerd did not answer within {STARTUP_SECONDS:.0f}s:\n{handle.log_tail()}"
            )
        time.sleep(0.2)


def stop_dockerd(proc: subprocess.Popen[bytes], handle: Dockerd) -> None:
    """SIGTERM, wait, SIGKILL (the whole process group: dockerd's own containerd too), then
    remove the engine's files."""
    for client in handle._clients:
        with contextlib.suppress(Exception):
            client.close()  # type: ignore[attr-defined]
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=STOP_SECONDS)
    # Whatever dockerd left behind in its group (its containerd) goes too.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    shutil.rmtree(handle.root, ignore_errors=True)


@pytest.fixture(scope="session")
def dockerd() -> Iterator[Dockerd]:
    reason = _unavailable()
    if reason:
        _skip_or_fail(reason)
    proc, handle = start_dockerd()
    try:
        yield handle
    finally:
        stop_dockerd(proc, handle)


def busybox_binary() -> Path | None:
    for candidate in BUSYBOX_CANDIDATES:
        path = Path(candidate)
        if path.is_file() and os.access(path, os.X_OK):
            return path
    return None


def busybox_rootfs() -> bytes:
    """A tar of a minimal root filesystem: a static busybox, its applets as symlinks, and
    ``/tmp``, ``/etc``, ``/root``. Skips when the host has no busybox."""
    binary = busybox_binary()
    if binary is None:
        pytest.skip("no static busybox on the host (apt-get install busybox-static)")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, mode in (("bin", 0o755), ("tmp", 0o1777), ("etc", 0o755), ("root", 0o700)):
            info = tarfile.TarInfo(name)
            info.type, info.mode = tarfile.DIRTYPE, mode
            tar.addfile(info)
        data = binary.read_bytes()
        info = tarfile.TarInfo("bin/busybox")
        info.size, info.mode = len(data), 0o755
        tar.addfile(info, io.BytesIO(data))
        for applet in BUSYBOX_APPLETS:
            info = tarfile.TarInfo(f"bin/{applet}")
            info.type, info.linkname = tarfile.SYMTYPE, "busybox"
            tar.addfile(info)
        passwd = b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n"
        info = tarfile.TarInfo("etc/passwd")
        info.size, info.mode = len(passwd), 0o644
        tar.addfile(info, io.BytesIO(passwd))
    return buf.getvalue()


def import_busybox(client, repository: str, tag: str = "latest") -> str:  # type: ignore[no-untyped-def]
    """Imports the busybox rootfs into the engine as ``repository:tag`` with ``CMD ["sh"]``
    and ``PATH`` set, like the official image; returns the image id."""
    client.api.import_image_from_data(
        busybox_rootfs(),
        repository=repository,
        tag=tag,
        changes=["ENV PATH=/bin", 'CMD ["sh"]'],
    )
    return str(client.images.get(f"{repository}:{tag}").id)
