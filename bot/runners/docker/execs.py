"""Running one command in the box container: output streamed as it arrives, the real exit
code, and both Wercker timeouts."""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from dataclasses import dataclass

from docker import APIClient
from docker.errors import DockerException

from bot.errors import InfrastructureError
from bot.logs import Log
from bot.runners.base import Timeouts
from bot.runners.output import OutputRelay, Watchdog

# How long to wait for the output stream to end after the step's processes were killed,
# before killing the whole container.
_DRAIN_SECONDS = 10.0
TIMEOUT_EXIT_CODE = 124
_END = object()


@dataclass(frozen=True)
class ExecOutcome:
    """``exit_code`` is the process's status (-1 when the engine could not tell, e.g. the
    container died under it); ``timed_out`` names the timeout that killed it."""

    exit_code: int
    timed_out: str | None = None


def run_exec(
    control: APIClient,
    stream: APIClient,
    container_id: str,
    cmd: list[str],
    env: dict[str, str],
    timeouts: Timeouts,
    log: Log,
) -> ExecOutcome:
    """Runs ``cmd`` with ``env`` in the container, streaming to ``log.output``.

    ``control`` and ``stream`` are docker ``APIClient``s: ``stream`` has no read timeout
    (a step may be silent for minutes), ``control`` does. On a timeout every process in the
    container except its keepalive (pid 1) is killed: a step's background children would
    otherwise hold the stream open. Only one step runs at a time in a session, so nothing
    else is hit.
    """
    try:
        exec_id = control.exec_create(
            container_id, cmd, stdout=True, stderr=True, stdin=False, tty=False, environment=env
        )["Id"]
        chunks = stream.exec_start(exec_id, stream=True, tty=False)
    except DockerException as err:
        raise InfrastructureError(f"cannot run the step in the box container: {err}") from None

    items: queue.Queue[object] = queue.Queue()

    def pump() -> None:
        try:
            for chunk in chunks:
                items.put(chunk)
        except Exception as err:  # the stream dies with the container; report, don't crash
            items.put(err)
        items.put(_END)

    reader = threading.Thread(target=pump, name=f"exec-{exec_id[:12]}", daemon=True)
    reader.start()
    relay = OutputRelay(log)
    timed_out = _follow(items, relay, timeouts)
    if timed_out:
        _kill_step(control, container_id, items, relay, log)
    relay.close()
    if timed_out:
        # What was killed says nothing; report it the way timeout(1) does, as the step
        # layer expects for both runners.
        return ExecOutcome(TIMEOUT_EXIT_CODE, timed_out)
    return ExecOutcome(_exit_code(control, exec_id), timed_out)


def _follow(items: queue.Queue[object], relay: OutputRelay, timeouts: Timeouts) -> str | None:
    """Relays output until the stream ends (``None``) or a timeout passes (its name)."""
    watchdog = Watchdog(timeouts, relay)
    while True:
        try:
            item = items.get(timeout=max(0.01, watchdog.wait_seconds(3600.0)))
        except queue.Empty:
            which = watchdog.expired()
            if which:
                return which
            continue
        if item is _END:
            return None
        if isinstance(item, bytes):
            watchdog.output(item)
        elif isinstance(item, Exception):
            relay.warn(f"lost the step's output stream: {type(item).__name__}")


def _kill_step(
    control: APIClient,
    container_id: str,
    items: queue.Queue[object],
    relay: OutputRelay,
    log: Log,
) -> None:
    """Kills the step's processes, then the container if the stream still does not end."""
    try:
        kill_id = control.exec_create(
            container_id, ["sh", "-c", "kill -9 -1"], user="0", stdout=True, stderr=True
        )["Id"]
        control.exec_start(kill_id)
    except DockerException:
        pass
    if _drain(items, relay):
        return
    log.warn("the step's processes did not stop; killing the box container")
    with contextlib.suppress(DockerException):
        control.kill(container_id)
    _drain(items, relay)


def _drain(items: queue.Queue[object], relay: OutputRelay) -> bool:
    """Relays what is left of the output; True once the stream has ended."""
    deadline = time.monotonic() + _DRAIN_SECONDS
    while (left := deadline - time.monotonic()) > 0:
        try:
            item = items.get(timeout=left)
        except queue.Empty:
            return False
        if item is _END:
            return True
        if isinstance(item, bytes):
            relay.feed(item)
    return False


def _exit_code(control: APIClient, exec_id: str) -> int:
    """The exec's real status; the engine may need a moment after the stream closes."""
    deadline = time.monotonic() + 5.0
    while True:
        try:
            info = control.exec_inspect(exec_id)
        except DockerException:
            return -1
        if not info.get("Running") or time.monotonic() > deadline:
            code = info.get("ExitCode")
            return int(code) if code is not None and not info.get("Running") else -1
        time.sleep(0.05)
