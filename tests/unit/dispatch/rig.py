"""A dispatcher under test, serving in a thread with a recording handler that holds the
builds a test asks it to hold (``hold``/``release``)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from bot.dispatch.base import Dispatcher, Fence
from bot.dispatch.keys import key_for
from bot.models import Result
from bot.store.rows import Claim
from bot.store.sql import SqlStore

WAIT_SECONDS = 30.0


def until(what: Callable[[], object], timeout: float = WAIT_SECONDS) -> None:
    """Waits for ``what()`` to be true; fails the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not what():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@dataclass
class Run:
    build_id: int
    key: str
    started: float
    ended: float | None = None


@dataclass
class Rig:
    store: SqlStore
    dispatcher: Dispatcher
    runs: list[Run] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _held: dict[int, threading.Event] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def handler(self, claim: Claim, fence: Fence) -> None:
        build = claim.build
        run = Run(build.id, key_for(build.repo, build.branch, build.git_tag), time.monotonic())
        with self._lock:
            self.runs.append(run)
            gate = self._held.get(build.id)
        if gate is not None:
            gate.wait(WAIT_SECONDS)
        fence.check()
        self.store.finish_attempt_fenced(claim.attempt_id, fence.token, Result.PASSED, "ok")
        run.ended = time.monotonic()

    def hold(self, build_id: int) -> None:
        self._held[build_id] = threading.Event()

    def release(self, build_id: int) -> None:
        self._held[build_id].set()

    def serve(self, concurrency: int) -> None:
        self._thread = threading.Thread(
            target=self.dispatcher.serve,
            args=(self.handler, concurrency, self._stop),
            name="serve",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        for gate in self._held.values():
            gate.set()
        self._stop.set()
        if self._thread is not None:
            self._thread.join(WAIT_SECONDS)
            assert not self._thread.is_alive(), "serve did not return after stop"

    def started(self) -> list[int]:
        with self._lock:
            return [run.build_id for run in self.runs]

    def running(self) -> list[Run]:
        with self._lock:
            return [run for run in self.runs if run.ended is None]

    def passed(self, build_id: int) -> bool:
        return self.store.attempt_state(build_id, 1) == Result.PASSED

    def max_overlap_per_key(self) -> int:
        """The most attempts of one key that ever ran at once."""
        worst = 0
        with self._lock:
            runs = list(self.runs)
        for run in runs:
            end = run.ended or time.monotonic()
            overlap = [
                other
                for other in runs
                if other.key == run.key and other.started < end
                and (other.ended or time.monotonic()) > run.started
            ]  # fmt: skip
            worst = max(worst, len(overlap))
        return worst
