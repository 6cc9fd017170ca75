"""A real ``wercker-bot serve`` as a subprocess, up (``/healthz`` answers) for as long as a
``with`` block runs."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import requests

from tests.harness.registry import die_with_parent, wait_until


@dataclass
class Served:
    url: str
    port: int
    proc: subprocess.Popen[bytes]
    log_path: Path

    def output(self) -> str:
        """The tail of what the server printed, for assertion messages."""
        return self.log_path.read_text(errors="replace")[-3000:]

    def threads(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("Threads:"):
                return int(line.split()[1])
        raise AssertionError("no Threads: line")


def stop(proc: subprocess.Popen[bytes], timeout: float = 15) -> None:
    """SIGTERM, then SIGKILL if it has not exited within ``timeout``; nothing if it has."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def serve(
    config: Path,
    *,
    port: int,
    log_path: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    extra_args: Sequence[str] = (),
    module: bool = False,
) -> Iterator[Served]:
    """``wercker-bot serve --config config --port port`` with its output in ``log_path``.

    By default the console script installed next to ``sys.executable``, as a user would run
    it; with ``module``, ``python -m bot.cli`` (from ``cwd``, so from a source tree). ``env``
    is the whole environment (``None``: this process's). Stopped when the block exits.
    """
    command = (
        [sys.executable, "-m", "bot.cli"]
        if module
        else [str(Path(sys.executable).with_name("wercker-bot"))]
    )
    args = ["serve", "--config", str(config), "--port", str(port), *extra_args]
    with log_path.open("wb") as out:
        proc = subprocess.Popen(
            [*command, *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=None if env is None else dict(env),
            cwd=cwd,
            preexec_fn=die_with_parent,
        )
    served = Served(f"http://127.0.0.1:{port}", port, proc, log_path)

    def up_or_exited() -> bool:
        if proc.poll() is not None:
            return True
        return requests.get(f"{served.url}/healthz", timeout=1).status_code == 200

    try:
        try:
            wait_until(up_or_exited, "wercker-bot serve", timeout=30)
        except RuntimeError:
            raise AssertionError(f"serve did not come up: {served.output()}") from None
        if proc.poll() is not None:
            raise AssertionError(f"serve exited with {proc.returncode}: {served.output()}")
        yield served
    finally:
        stop(proc)
