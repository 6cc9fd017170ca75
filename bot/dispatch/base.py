"""The ``Dispatcher`` seam: how queued builds reach a worker, on either store.

- ``bot.dispatch.embedded.EmbeddedDispatcher`` (SQLite): worker threads poll the store and
  claim the oldest queued attempt whose branch is idle (``Store.claim_next``).
- ``bot.dispatch.procrastinate.ProcrastinateDispatcher`` (PostgreSQL): intake kicks a
  ``drain(key)`` job per branch; procrastinate's ``lock`` runs one per key at a time and its
  ``queueing_lock`` keeps one waiting per key. Workers run on any number of hosts.

Whichever runs it, a claimed attempt is owned by one worker under a fence token (the
``attempts.worker`` value written by the claim). A ``Fence`` lets that worker prove it still
owns the attempt before anything the outside world sees (a tag or manifest PUT, a commit
status, the attempt's end); once a reaper has ended the attempt, the fence refuses and the
worker stops silently (``AttemptFenced``).

A refusal also stops the attempt's running step at once, whoever noticed it (the dispatcher's
beat, the log writer's heartbeat, or a fenced write): ``StoreFence.on_refused`` runs what its
handler registered (``bot.worker.WorkerPool`` sets the attempt's ``Abort`` with
``FENCE_REFUSED``, which kills the step's processes and skips the rest). Without it a resumed
zombie would go on running the user's script next to the branch's newer build.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Protocol

from bot.store.base import DrainStore
from bot.store.rows import Claim

FENCE_REFUSED = "Reaped: this worker no longer owns the attempt"
"""The reason of the ``Abort`` a refused fence sets. Never written anywhere (the fenced
store refuses the attempt's writes): it names the stop in the worker's own log."""


class AttemptFenced(Exception):
    """The attempt is no longer running under this worker (a reaper ended it while the
    worker was paused or cut off). Whoever catches it stops the attempt *without* writing
    its end or any status: the reaper already did. Deliberately not a ``WerckerBotError``:
    it is not a build outcome."""

    def __init__(self, attempt_id: int, worker: str) -> None:
        super().__init__(f"attempt {attempt_id} is no longer owned by {worker}")
        self.attempt_id = attempt_id
        self.worker = worker


class Fence(Protocol):
    """The claim of one attempt by one worker."""

    @property
    def attempt_id(self) -> int: ...

    @property
    def token(self) -> str:
        """The fence token: the ``attempts.worker`` value the claim wrote."""
        ...

    def check(self) -> None:
        """Proves the attempt is still running under ``token`` and renews its heartbeat,
        in one statement; raises ``AttemptFenced`` when it is not (and from then on,
        without asking the store again). Call it right before any tag or manifest PUT."""
        ...

    @property
    def lost(self) -> bool:
        """Whether the fence has already refused (known without asking the store)."""
        ...

    def refused(self) -> AttemptFenced:
        """Records that the store refused a write fenced by ``token``; returns the error
        to raise. From then on ``lost`` is true and ``check`` raises at once."""
        ...


Handler = Callable[[Claim, "StoreFence"], object]
"""Runs one claimed attempt to its end (``bot.build.execute`` behind
``bot.dispatch.fence.fenced_services``). Its return value is ignored; an exception it
raises is logged, and the attempt is left to the reaper. Both dispatchers hand it a
``StoreFence``, so the handler can ``on_refused`` how to stop its attempt."""


class Dispatcher(Protocol):
    """Delivers queued attempts to workers. The store stays the source of truth: a
    dispatcher only wakes workers up, so every method may be called any number of times."""

    def kick(self, key: str) -> None:
        """Wakes the workers for ``key`` (``bot.dispatch.keys``), after the intake's commit.
        Idempotent: kicking a key that already has a waiting wake-up adds nothing. Never
        runs a build itself; safe from any thread. A kick that is lost (the process died
        after the commit) is repaired by ``reconcile``."""
        ...

    def serve(self, handler: Handler, concurrency: int, stop_event: threading.Event) -> None:
        """Runs queued attempts with ``handler``, at most ``concurrency`` at once in this
        process, and never two of one key at once across all processes. Attempts of
        different keys start in arrival order (FIFO across keys). Blocks until
        ``stop_event`` is set; then it claims nothing more and returns once the handlers
        it started have returned. Also runs ``reap`` and ``reconcile`` periodically."""
        ...

    def reap(self) -> list[int]:
        """Ends the attempts of lost workers ``errored`` (their statuses resolved through
        the store's listener), releases what the dispatcher held for them, and kicks
        their keys so the newest queued build of each runs. Returns the attempts ended."""
        ...

    def reconcile(self) -> list[str]:
        """Kicks every key that has queued builds but no pending or running wake-up (a
        kick lost in a crash). Returns the keys kicked."""
        ...

    def close(self) -> None:
        """Releases the connections ``kick`` opened (a later ``kick`` reopens them)."""
        ...


class StoreFence:
    """The claim of ``attempt_id`` under ``token``. Once refused, it stays refused without
    asking the store again (a reaped attempt never runs again under the same token).

    ``on_refused`` registers how to stop the attempt when the fence refuses: each callback
    runs once, in the thread that met the refusal (or at once, if it already came)."""

    def __init__(self, store: DrainStore, attempt_id: int, token: str) -> None:
        self._store = store
        self._attempt_id = attempt_id
        self._token = token
        self._lost = threading.Event()
        self._lock = threading.Lock()
        self._on_refused: list[Callable[[], object]] = []

    @property
    def attempt_id(self) -> int:
        return self._attempt_id

    @property
    def token(self) -> str:
        return self._token

    @property
    def lost(self) -> bool:
        """Whether the fence has refused (known without a query)."""
        return self._lost.is_set()

    def on_refused(self, stop: Callable[[], object]) -> None:
        """Calls ``stop`` once when the fence refuses; at once if it already has. ``stop``
        must be quick and must not raise (``Abort.set``): it runs inside whatever write
        met the refusal."""
        with self._lock:
            if not self._lost.is_set():
                self._on_refused.append(stop)
                return
        stop()

    def refused(self) -> AttemptFenced:
        """Records the refusal, runs the ``on_refused`` callbacks (the first refusal only);
        returns the error to raise."""
        with self._lock:
            self._lost.set()
            stops, self._on_refused = self._on_refused, []
        for stop in stops:
            stop()
        return AttemptFenced(self._attempt_id, self._token)

    def check(self) -> None:
        if self._lost.is_set() or not self._store.fence(self._attempt_id, self._token):
            raise self.refused()
