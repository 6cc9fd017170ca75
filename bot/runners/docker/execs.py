"""Running commands in the box container: a step's command with its output streamed as it
arrives, the real exit code and both Wercker timeouts; and the bot's own small commands,
whose output is read only up to a cap."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from docker import APIClient
from docker.errors import DockerException

from bot.errors import InfrastructureError
from bot.logs import Log
from bot.runners.base import Timeouts
from bot.runners.docker.engine import close_stream
from bot.runners.output import OutputRelay, Watchdog

# At most this many chunks of a step's output wait between the thread reading the engine's
# stream and the build log. A log that applies backpressure (``StoreLog``) then slows the
# reader, the engine stops reading the exec's pipe and the step blocks on its writes,
# instead of the bot holding whatever the step prints in memory.
OUTPUT_QUEUE_CHUNKS = 256
# After the step's processes were killed, the rest of the output is relayed as long as it
# flows: the stream must go this long with nothing new before the container is killed. A
# slow log does not count against it (only time spent waiting for the stream does).
_DRAIN_SECONDS = 10.0
# However slow the log, at most this long is spent relaying the rest of the output once
# the step's processes were killed (what is left is bounded by the engine's buffers and
# the queue, so only something still alive in the box can hold it longer).
_DRAIN_MAX_SECONDS = 600.0
# How often the engine is asked whether the step's own process has exited. The stream alone
# cannot tell: a background child that keeps stdout open holds it open (the engine gives up
# on it a few seconds after the exit, but that is the engine's choice, not a promise).
_POLL_SECONDS = 0.5
TIMEOUT_EXIT_CODE = 124
_END = object()

# Run as root in the box: every process but PID 1 (the keepalive) gets SIGKILL. kill(2)
# with -1 skips PID 1 and the caller, and the kernel aborts a fork that races a pending
# SIGKILL, so a single pass leaves nothing of the step. ``kill`` is a shell builtin in
# every sh, so the box needs nothing more than the keepalive already does.
KILL_LEFTOVERS = ["sh", "-c", "kill -9 -1 2>/dev/null; exit 0"]


@dataclass(frozen=True)
class ExecOutcome:
    """``exit_code`` is the process's status (-1 when the engine could not tell, e.g. the
    container died under it); ``timed_out`` names the timeout that killed it, or is
    ``ABORTED`` when its attempt's ``Timeouts.abort`` stopped it."""

    exit_code: int
    timed_out: str | None = None


@dataclass(frozen=True)
class Captured:
    """What a small command printed, each stream cut at the caller's limit (``*_cut`` says
    so). ``exit_code`` is -1 when it could not be known (output cut, container gone)."""

    exit_code: int
    stdout: bytes
    stderr: bytes
    stdout_cut: bool = False
    stderr_cut: bool = False


def run_exec(
    control: APIClient,
    stream: APIClient,
    container_id: str,
    cmd: list[str],
    env: dict[str, str],
    timeouts: Timeouts,
    log: Log,
) -> ExecOutcome:
    """Runs ``cmd`` with ``env`` in the container as the box's user, streaming to
    ``log.output``.

    ``control`` and ``stream`` are docker ``APIClient``s: ``stream`` has no read timeout
    (a step may be silent for minutes), ``control`` does. Whatever the command started dies
    with it: once it has exited (or a timeout passed, or ``timeouts.abort`` was set), every
    process in the container except its keepalive (PID 1) is killed, then the rest of the
    output is relayed. Only one
    command runs at a time in a session, so nothing else is hit. A background child that
    keeps stdout open therefore neither hangs the step nor outlives it.
    """
    try:
        exec_id = control.exec_create(
            container_id, cmd, stdout=True, stderr=True, stdin=False, tty=False, environment=env
        )["Id"]
        chunks = stream.exec_start(exec_id, stream=True, tty=False)
    except DockerException as err:
        raise InfrastructureError(f"cannot run the step in the box container: {err}") from None
    items, done = _read_in_background(chunks, f"exec-{exec_id[:12]}")
    relay = OutputRelay(log)
    try:
        ended, timed_out = _follow(items, relay, timeouts, lambda: _exited(control, exec_id))
        _stop_leftovers(control, container_id, items, relay, ended, log)
        relay.close()
    finally:
        done.set()  # the reader stops at its next chunk instead of waiting for room
        close_stream(chunks)  # its socket, now; ends the reader's read if it still waits
    if timed_out:
        # What was killed says nothing; report it the way timeout(1) does, as the step
        # layer expects for both runners.
        return ExecOutcome(TIMEOUT_EXIT_CODE, timed_out)
    return ExecOutcome(_exit_code(control, exec_id), None)


def _read_in_background(
    chunks: Iterable[object], name: str
) -> tuple[queue.Queue[object], threading.Event]:
    """Starts a thread that moves ``chunks`` into a bounded queue (then ``_END``, or the
    error that ended the stream). Setting the returned event stops it at its next chunk."""
    items: queue.Queue[object] = queue.Queue(maxsize=OUTPUT_QUEUE_CHUNKS)
    done = threading.Event()

    def offer(item: object) -> bool:
        # Waits for room (that wait is the backpressure), until nobody reads any more.
        while not done.is_set():
            try:
                items.put(item, timeout=0.5)
                return True
            except queue.Full:
                continue
        return False

    def pump() -> None:
        try:
            for chunk in chunks:
                if not offer(chunk):
                    return
        except Exception as err:  # the stream dies with the container; report, don't crash
            offer(err)
        offer(_END)

    threading.Thread(target=pump, name=name, daemon=True).start()
    return items, done


def _stop_leftovers(
    control: APIClient,
    container_id: str,
    items: queue.Queue[object],
    relay: OutputRelay,
    ended: bool,
    log: Log,
) -> None:
    """Once the command exited (or timed out): kills what it left running, relaying the
    output meanwhile, then relays the rest; kills the box container when they do not stop."""
    killed, ended = _relaying(lambda: kill_leftovers(control, container_id), items, relay, ended)
    # With the step's processes killed, what is left of the stream is bounded (pipe and
    # engine buffers, the queue): relay it all, however slow the log. When they could
    # not be killed, something may still print: the old short grace applies.
    limit = _DRAIN_MAX_SECONDS if killed else _DRAIN_SECONDS
    if not ended and not _drain(items, relay, limit):
        log.warn("the step's processes did not stop; killing the box container")
        _, ended = _relaying(lambda: _kill_container(control, container_id), items, relay)
        if not ended:
            _drain(items, relay, _DRAIN_SECONDS)


def _relaying(
    action: Callable[[], bool],
    items: queue.Queue[object],
    relay: OutputRelay,
    ended: bool = False,
) -> tuple[bool, bool]:
    """Runs ``action`` while relaying the step's output, and returns what it returned
    (False if it raised) and whether the stream has ended (``ended``: it had already).

    The engine may not finish another exec in the container, or a kill, before the step's
    stream is read on: with the queue full and nobody reading it, the two would wait on
    each other for ever."""
    outcome: list[bool] = []

    def run() -> None:
        try:
            outcome.append(action())
        except Exception:  # the engine went away; the caller goes on as after a refusal
            outcome.append(False)

    worker = threading.Thread(target=run, name="exec-kill", daemon=True)
    worker.start()
    while worker.is_alive() and not ended:
        try:
            item = items.get(timeout=0.1)
        except queue.Empty:
            continue
        if item is _END:
            ended = True
        elif isinstance(item, bytes):
            relay.feed(item)
    worker.join()
    return bool(outcome and outcome[0]), ended


def _kill_container(control: APIClient, container_id: str) -> bool:
    try:
        control.kill(container_id)
    except DockerException:
        return False
    return True


def kill_leftovers(control: APIClient, container_id: str) -> bool:
    """Kills every process in the container except PID 1. False when that could not be
    done (the container is not running: then nothing of the step runs either)."""
    try:
        run_capped(control, container_id, KILL_LEFTOVERS, user="0", limit=4096)
    except DockerException:
        return False
    return True


def run_capped(
    control: APIClient,
    container_id: str,
    cmd: list[str],
    *,
    limit: int,
    env: dict[str, str] | None = None,
    user: str = "",
) -> Captured:
    """Runs one of the bot's own commands in the container and returns its output, each
    stream read only up to ``limit`` bytes: a box's tools may print without end, and the
    bot must not hold more than it means to. ``user`` empty is the box's own user. Raises
    ``DockerException`` when the engine refuses (e.g. the container is not running)."""
    exec_id = control.exec_create(
        container_id, cmd, stdout=True, stderr=True, stdin=False, tty=False,
        user=user, environment=env or {},
    )["Id"]  # fmt: skip
    frames: Any = control.exec_start(exec_id, stream=True, demux=True)
    out, err = bytearray(), bytearray()
    out_cut = err_cut = False
    try:
        for stdout, stderr in frames:
            out_cut = _append(out, stdout, limit) or out_cut
            err_cut = _append(err, stderr, limit) or err_cut
            if out_cut or err_cut:
                break
    finally:
        # Stops the engine sending more when the output was cut, and frees the socket.
        close_stream(frames)
    code = -1 if out_cut or err_cut else _exit_code(control, exec_id)
    return Captured(code, bytes(out), bytes(err), out_cut, err_cut)


def _append(buffer: bytearray, data: bytes | None, limit: int) -> bool:
    """Adds ``data`` up to ``limit`` bytes in all; True when some had to be left out."""
    if not data:
        return False
    room = limit - len(buffer)
    buffer += data[: max(room, 0)]
    return len(data) > room


def _follow(
    items: queue.Queue[object],
    relay: OutputRelay,
    timeouts: Timeouts,
    exited: Callable[[], bool],
) -> tuple[bool, str | None]:
    """Relays output until the stream ends, the command has exited while something else
    holds the stream open, or a timeout passes. Returns (whether the stream ended, the
    timeout's name or ``None``)."""
    watchdog = Watchdog(timeouts, relay)
    next_poll = time.monotonic() + _POLL_SECONDS
    while True:
        now = time.monotonic()
        if now >= next_poll:
            if exited():
                return False, None
            # Also here, not only when the queue runs empty: a step printing faster than
            # the log takes it never lets it run empty, and must still hit its timeout.
            which = watchdog.expired()
            if which:
                return False, which
            next_poll = now + _POLL_SECONDS
        wait = min(watchdog.wait_seconds(3600.0), next_poll - now)
        try:
            item = items.get(timeout=max(0.01, wait))
        except queue.Empty:
            which = watchdog.expired()
            if which:
                return False, which
            continue
        if item is _END:
            return True, None
        if isinstance(item, bytes):
            watchdog.output(item)
        elif isinstance(item, Exception):
            relay.warn(f"lost the step's output stream: {type(item).__name__}")


def _exited(control: APIClient, exec_id: str) -> bool:
    """Whether the exec's own process has exited. Before it has started the engine reports
    it not running with no exit code, so both are needed."""
    try:
        info = control.exec_inspect(exec_id)
    except DockerException:
        return False
    return not info.get("Running") and info.get("ExitCode") is not None


def _drain(items: queue.Queue[object], relay: OutputRelay, limit: float) -> bool:
    """Relays what is left of the output; True once the stream has ended. False when the
    stream brought nothing for ``_DRAIN_SECONDS`` (time spent in the log does not count:
    a slow log is not a stuck stream), or it still had not ended after ``limit`` seconds."""
    deadline = time.monotonic() + limit
    while (left := deadline - time.monotonic()) > 0:
        try:
            item = items.get(timeout=min(left, _DRAIN_SECONDS))
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
