"""``EmbeddedDispatcher``: the dispatcher of the SQLite store (one host).

Worker threads poll the store and claim the oldest queued attempt whose branch is idle
(``Store.claim_next``: ``BEGIN IMMEDIATE`` makes the claim atomic across the processes
sharing one ``data_dir``). Nothing is queued outside the store, so ``kick`` has nothing to
do and ``reconcile`` nothing to repair; ``reap`` is ``Store.recover_dead``.

``serve`` runs the claim loops only (``_work``, one thread each), handing each claimed
attempt to the handler (``bot.worker.WorkerPool._execute``) under a ``StoreFence`` (the
claim's worker name is its token). It runs neither ``reap`` nor ``reconcile``: the
``WorkerPool``'s recovery thread calls ``reap`` (through ``WorkerPool.recover``).
"""

from __future__ import annotations

import logging
import threading

from bot.dispatch.base import Handler, StoreFence
from bot.errors import StoreUnavailable
from bot.procs import worker_name
from bot.store.base import Store

logger = logging.getLogger(__name__)

CLAIM_RETRY_SECONDS = 2.0
IDLE_POLL_SECONDS = 0.3


class EmbeddedDispatcher:
    """``Dispatcher`` over ``store`` by polling (see the module docstring)."""

    def __init__(self, store: Store, *, poll: float = IDLE_POLL_SECONDS) -> None:
        self.store = store
        self.poll = poll

    def kick(self, key: str) -> None:
        """Nothing to do: the claim loops poll the store, where the build already is."""

    def reap(self) -> list[int]:
        """``Store.recover_dead``: attempts of dead processes end errored ("worker died");
        the claim loops pick their branches' next builds up by themselves."""
        return self.store.recover_dead()

    def close(self) -> None:
        """Nothing is held outside the store."""

    def reconcile(self) -> list[str]:
        """Nothing is queued outside the store: no wake-up can be lost."""
        return []

    def serve(self, handler: Handler, concurrency: int, stop_event: threading.Event) -> None:
        """``concurrency`` claim threads until ``stop_event``; returns once they have.
        Nothing else: ``reap`` is the caller's (``WorkerPool.recover``)."""
        threads = [
            threading.Thread(
                target=self._work, args=(i, handler, stop_event), name=f"worker-{i}", daemon=True
            )
            for i in range(concurrency)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    def _work(self, index: int, handler: Handler, stop_event: threading.Event) -> None:
        name = worker_name(f"w{index}")
        failing = False
        while not stop_event.is_set():
            try:
                claim = self.store.claim_next(name)
            except StoreUnavailable as err:
                # A full disk lasts: say so once, then once more when it is over.
                if not failing:
                    logger.error("%s: cannot claim work (%s); retrying every 2 s", name, err)
                failing = True
                stop_event.wait(CLAIM_RETRY_SECONDS)
                continue
            except Exception:
                logger.exception("claiming work failed; retrying in 2 s")
                stop_event.wait(CLAIM_RETRY_SECONDS)
                continue
            if failing:
                logger.warning("%s: the store answers again; claiming work", name)
                failing = False
            if claim is None:
                stop_event.wait(self.poll)
                continue
            try:
                handler(claim, StoreFence(self.store, claim.attempt_id, name))
            except Exception:  # never lose a worker thread; recovery ends the attempt
                logger.exception("attempt %s crashed its worker", claim.attempt_id)
