"""Group commit for the webhook intake: one writer thread per process stores the deliveries
waiting at that moment in ONE transaction (``IntakeStore.record_pushes``), so a burst of N
concurrent pushes costs a few commits (and fsyncs), not N, and request threads never queue
on the database's write lock.

A request thread ``submit``s its push and blocks until the batch holding it is committed:
the webhook is still answered only once its push is durable, with its own answer (build id,
attempt, or why it was ignored).

Failures (decided here, so no delivery is lost or mis-answered):

- the batch raises ``StoreUnavailable`` (full disk, I/O error, locked too long): nothing of
  it was kept, and every member gets its own ``StoreUnavailable`` (503, "redeliver later"),
  as each would have alone; retrying them one by one would only repeat the failure N times
  while the queue grows;
- the batch raises anything else (one delivery the database refuses, a bug): nothing was
  kept, and each member is retried alone in its own transaction, so one bad delivery fails
  alone (its error reaches its own request) and the others are stored and answered.

A request waits at most ``SUBMIT_TIMEOUT`` for its batch: a store that hangs (a PostgreSQL
connection that neither answers nor fails) would otherwise hold every gunicorn thread. The
request then gets ``IntakeTimeout`` (503, "redeliver later"). A push still queued is taken
out of the queue (nothing of it is stored); one already in the hanging transaction may
still be committed later. Either way the redelivery is safe: the store dedupes it by
delivery id, so it is stored afresh if the first never was, answered "already in
progress" (with the build's id) if the first was committed and its build has not finished
-- the right answer: the push is in, and its build runs once -- and re-run as the next
attempt if the build finished before GitHub redelivered, which costs one extra run, never
a lost push.

Kicks: after a batch is answered, the writer wakes the workers once per distinct dispatch
key of the batch's stored pushes (a kick is idempotent: it says "look at this key"), so a
burst on one branch costs one round trip to the queue, not one per push.

Bounds: a batch holds at most ``MAX_BATCH`` deliveries and waits at most ``MAX_WAIT`` for
more after its first; at most ``MAX_QUEUE`` deliveries wait, and one more is refused at once
with ``IntakeBusy`` (503 with Retry-After) instead of growing without bound.

Shutdown: ``close`` refuses new deliveries (503) and returns once the writer has stored what
was queued; ``bot.app`` calls it for every writer still alive when the process exits. The
thread starts with the first delivery and ends after ``IDLE_EXIT`` seconds without any, so an
app made before a fork (gunicorn ``--preload``) or in a test leaves no thread behind.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Sequence

from bot.dispatch.keys import key_for
from bot.errors import StoreUnavailable
from bot.store.base import IntakeStore
from bot.store.rows import Intake, NewPush

logger = logging.getLogger(__name__)

# Module constants, not settings (bot/settings.py is not this module's to change): a burst
# of webhooks from one forge rarely exceeds a few dozen at once.
MAX_BATCH = 64
"""Deliveries committed in one transaction at most."""
MAX_WAIT = 0.001
"""Seconds a batch waits for more deliveries after its first (deliveries that arrive while
a batch commits join the next one anyway)."""
MAX_QUEUE = 1024
"""Deliveries waiting at most; one more is answered 503 (``IntakeBusy``)."""
IDLE_EXIT = 5.0
"""Seconds without a delivery after which the writer thread ends (the next one starts it)."""
# Why 30 s: far above a healthy batch (milliseconds), so only a store in trouble reaches
# it; short enough that a hung PostgreSQL connection (or a batch in a 60 s lock wait,
# bot.store.db's lock timeout) frees the request threads instead of holding every one.
# GitHub stops waiting after 10 s anyway; the bound is about our threads, not its patience.
SUBMIT_TIMEOUT = 30.0
"""Seconds a request waits for its batch before it is answered 503 (``IntakeTimeout``)."""


class IntakeBusy(StoreUnavailable):
    """The intake queue is full: nothing of this delivery was stored; try again shortly."""

    retry_after = 10


class IntakeTimeout(StoreUnavailable):
    """The store did not answer in time: the push may or may not be stored (see the
    module docstring); a redelivery is safe either way."""


class _Ticket:
    """One submitted push and, once its batch is done, its answer or its error."""

    __slots__ = ("_lock", "answer", "done", "error", "push")

    def __init__(self, push: NewPush) -> None:
        self.push = push
        self.done = threading.Event()
        self.answer: Intake | None = None
        self.error: BaseException | None = None
        # The first answer wins: a request that timed out and its late batch race.
        self._lock = threading.Lock()

    def succeed(self, answer: Intake) -> None:
        with self._lock:
            if not self.done.is_set():
                self.answer = answer
                self.done.set()

    def fail(self, error: BaseException) -> None:
        with self._lock:
            if not self.done.is_set():
                self.error = error
                self.done.set()


class IntakeWriter:
    """Stores submitted pushes in batches, one transaction per batch, on one thread.

    Safe to call from any number of request threads; ``submit`` blocks until its push is
    stored (or refused) and returns its own ``Intake``."""

    def __init__(
        self,
        store: IntakeStore,
        *,
        max_batch: int = MAX_BATCH,
        max_wait: float = MAX_WAIT,
        max_queue: int = MAX_QUEUE,
        idle_exit: float = IDLE_EXIT,
        submit_timeout: float = SUBMIT_TIMEOUT,
        kick: Callable[[str], None] | None = None,
    ) -> None:
        self._store = store
        # Wakes the workers for a dispatch key (``Dispatcher.kick``), once per distinct key
        # of a batch, after its requests are answered: a kick that fails is logged, and the
        # dispatcher's reconcile repairs it.
        self._kick = kick
        self._submit_timeout = submit_timeout
        self._max_batch = max_batch
        self._max_wait = max_wait
        self._max_queue = max_queue
        self._idle_exit = idle_exit
        self._cond = threading.Condition()
        self._queue: deque[_Ticket] = deque()
        self._thread: threading.Thread | None = None
        self._closed = False
        _LIVE.add(self)

    @property
    def waiting(self) -> int:
        """Deliveries queued and not yet taken into a batch."""
        with self._cond:
            return len(self._queue)

    @property
    def running(self) -> bool:
        """Whether the writer thread is alive (it starts with a delivery, ends when idle)."""
        with self._cond:
            return self._thread is not None

    def submit(self, push: NewPush) -> Intake:
        """Stores ``push`` (with the deliveries waiting alongside it) and returns its answer
        once the transaction is committed. Raises ``IntakeBusy`` when ``max_queue``
        deliveries are already waiting, ``StoreUnavailable`` when the store could not write
        it or the writer is closed (nothing of it stored, either way), and whatever else
        storing it alone raised. Raises ``IntakeTimeout`` (a ``StoreUnavailable``) after
        ``submit_timeout`` seconds without an answer: the push is taken out of the queue if
        it is still there, but one already in the transaction may still be committed."""
        ticket = _Ticket(push)
        with self._cond:
            if self._closed:
                raise StoreUnavailable("the intake is shutting down")
            if len(self._queue) >= self._max_queue:
                raise IntakeBusy(f"{len(self._queue)} deliveries are waiting to be stored")
            self._queue.append(ticket)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="intake-writer", daemon=True)
                self._thread.start()
            self._cond.notify_all()
        if not ticket.done.wait(self._submit_timeout):
            self._give_up(ticket)
        if ticket.error is not None:
            raise ticket.error
        assert ticket.answer is not None
        return ticket.answer

    def _give_up(self, ticket: _Ticket) -> None:
        """Answers a ticket whose batch took too long (unless it was answered meanwhile):
        out of the queue if still there, then failed with ``IntakeTimeout``."""
        with self._cond:
            queued = ticket in self._queue
            if queued:
                self._queue.remove(ticket)
        stage = "waiting for a transaction" if queued else "in a transaction that may still commit"
        # A no-op when the batch answered it meanwhile (the first answer wins).
        ticket.fail(IntakeTimeout(f"no answer within {self._submit_timeout:g} s ({stage})"))
        if ticket.error is None:
            return
        logger.error(
            "intake of delivery %s: no answer from the store within %g s",
            ticket.push.delivery_id,
            self._submit_timeout,
        )

    def close(self, timeout: float | None = 30.0) -> bool:
        """Refuses new deliveries and waits (up to ``timeout``) until the writer has stored
        everything queued; whether it has."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
            return not thread.is_alive()
        return True

    def _run(self) -> None:
        batch: list[_Ticket] | None = []
        try:
            while (batch := self._take()) is not None:
                self._commit(batch)
        except BaseException:
            # Only an interpreter-level exit (SystemExit, KeyboardInterrupt) gets here
            # (``_commit`` answers every error): answer what is left rather than leave
            # request threads waiting forever.
            with self._cond:
                left = [t for t in batch or [] if not t.done.is_set()] + list(self._queue)
                self._queue.clear()
                if self._thread is threading.current_thread():
                    self._thread = None
            for ticket in left:
                ticket.fail(StoreUnavailable("the intake writer stopped"))
            raise

    def _take(self) -> list[_Ticket] | None:
        """The next batch: the deliveries waiting now, after at most ``max_wait`` for more,
        up to ``max_batch``. ``None`` when the writer is to end (closed, or idle too long):
        decided under the lock ``submit`` takes, so a delivery queued at that moment starts
        a new thread instead of waiting for this one."""
        with self._cond:
            if not self._queue and not self._closed:
                self._cond.wait(self._idle_exit)
            if not self._queue:
                self._thread = None
                return None
            deadline = time.monotonic() + self._max_wait
            while len(self._queue) < self._max_batch and not self._closed:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            count = min(len(self._queue), self._max_batch)
            return [self._queue.popleft() for _ in range(count)]

    def _commit(self, batch: Sequence[_Ticket]) -> None:
        """Stores one batch and answers every member (see the module docstring)."""
        try:
            answers = self._store.record_pushes([t.push for t in batch])
        except StoreUnavailable as err:
            logger.error("intake of %d deliveries: %s", len(batch), err)
            for ticket in batch:
                ticket.fail(_unavailable(err))
            return
        except Exception as err:
            if len(batch) == 1:
                logger.exception("intake of delivery %s failed", batch[0].push.delivery_id)
                batch[0].fail(err)
                return
            logger.exception("intake of %d deliveries failed; storing each alone", len(batch))
            for ticket in batch:
                self._commit([ticket])
            return
        for ticket, answer in zip(batch, answers, strict=True):
            ticket.succeed(answer)  # a no-op for a request answered IntakeTimeout already
        self._kick_keys(
            p for p, a in zip((t.push for t in batch), answers, strict=True) if a.ignored is None
        )

    def _kick_keys(self, stored: Iterable[NewPush]) -> None:
        """One kick per distinct dispatch key of ``stored`` (in first-seen order)."""
        if self._kick is None:
            return
        for key in dict.fromkeys(key_for(p.repo, p.branch, p.git_tag) for p in stored):
            try:
                self._kick(key)
            except Exception:
                logger.exception("waking the workers for %s failed", key)


def _unavailable(err: StoreUnavailable) -> StoreUnavailable:
    """A fresh ``StoreUnavailable`` for one member (each request raises its own)."""
    fresh = StoreUnavailable(err.reason)
    fresh.__cause__ = err
    return fresh


_LIVE: weakref.WeakSet[IntakeWriter] = weakref.WeakSet()


@atexit.register
def _drain_all() -> None:
    """At process exit (gunicorn's worker, ``serve``): every live writer stores what is
    queued before the interpreter goes."""
    for writer in list(_LIVE):
        writer.close()
