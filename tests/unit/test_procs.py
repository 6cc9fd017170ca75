"""Process names and liveness (``bot.procs``), checked against real processes: a running
child, a zombie nobody reaped yet, a reaped one, and a child whose name fools a naive
reading of ``/proc/<pid>/stat``."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bot.procs import PROCESS_TOKEN, process_alive, worker_name

HOST = socket.gethostname()


def name_of(pid: int, token: str = "0123456789ab") -> str:
    return f"{HOST}:{pid}:{token}"


@pytest.fixture
def child() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(["sleep", "30"])
    yield proc
    if proc.poll() is None:
        proc.kill()
    proc.wait()


def wait_for(condition: Callable[[], bool], what: str, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.01)


def test_worker_name_is_host_pid_token_and_an_optional_tag() -> None:
    assert worker_name() == f"{HOST}:{os.getpid()}:{PROCESS_TOKEN}"
    assert worker_name("w3") == f"{HOST}:{os.getpid()}:{PROCESS_TOKEN}:w3"
    assert len(PROCESS_TOKEN) == 12 and ":" not in PROCESS_TOKEN


def test_this_process_is_alive_by_its_own_name_tagged_or_not() -> None:
    assert process_alive(worker_name()) is True
    assert process_alive(worker_name("w0")) is True


def test_this_pid_under_an_earlier_token_is_dead() -> None:
    """A restarted container is often pid 1 again: the pid alone proves nothing."""
    assert process_alive(name_of(os.getpid(), "earlier00000")) is False
    assert process_alive(f"{HOST}:{os.getpid()}") is False  # no token at all


@pytest.mark.parametrize(
    "owner",
    [
        "another-host.example:1:0123456789ab",
        f"{HOST}",
        f"{HOST}:",
        f"{HOST}:abc:0123456789ab",
        f"{HOST}:-5:0123456789ab",
        f"{HOST}:0:0123456789ab",
        "",
    ],
)
def test_another_host_or_a_name_without_a_pid_cannot_tell(owner: str) -> None:
    assert process_alive(owner) is None


def test_a_running_child_is_alive_and_a_reaped_one_is_dead(
    child: subprocess.Popen[bytes],
) -> None:
    assert process_alive(name_of(child.pid)) is True
    assert process_alive(f"{name_of(child.pid)}:w1") is True
    child.kill()
    child.wait()
    assert process_alive(name_of(child.pid)) is False


def test_a_zombie_counts_as_dead_before_it_is_reaped(child: subprocess.Popen[bytes]) -> None:
    os.kill(child.pid, signal.SIGKILL)
    stat = Path(f"/proc/{child.pid}/stat")
    wait_for(lambda: stat.read_bytes().split(b") ")[1][:1] == b"Z", "the child never exited")
    assert process_alive(name_of(child.pid)) is False
    assert child.poll() is not None  # it was still there to reap


def test_a_process_name_with_parentheses_and_a_z_does_not_look_dead() -> None:
    """``comm`` may hold ``) Z (``: the state is read after the last ``)``."""
    script = (
        "import sys, time\n"
        "open('/proc/self/comm', 'w').write('x) Z (y')\n"
        "print('named', flush=True)\n"
        "time.sleep(30)\n"
    )
    with subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE) as proc:
        try:
            assert proc.stdout is not None and proc.stdout.readline() == b"named\n"
            assert Path(f"/proc/{proc.pid}/comm").read_text() == "x) Z (y\n"
            assert process_alive(name_of(proc.pid)) is True
        finally:
            proc.kill()


def test_pid_1_is_alive() -> None:
    """pid 1 always runs; here it may belong to another user (``kill`` then says EPERM)."""
    assert process_alive(name_of(1)) is True
