"""``ProcrastinateDispatcher``: the dispatcher of the PostgreSQL store, workers on any hosts.

- ``kick(key)`` defers the job ``drain(key)`` with ``lock=key`` (procrastinate runs at most one
  job per lock at a time, oldest first) and ``queueing_lock=key`` (at most one waiting job
  per key; ``AlreadyEnqueued`` means a wake-up is already there, which is all a kick wants).
- ``drain(key)``, on some worker: ``Store.claim_key`` supersedes the key's older queued builds
  and marks the newest running under a fence token (``host:pid:token:job<N>``, unique per
  job); the handler runs it while a beat thread renews the attempt's heartbeat through the
  fence; then, if the key still has queued builds, it kicks the key again (that job waits for
  this one's lock, and goes behind other keys' jobs: FIFO across keys).
- ``reap()`` (a thread in every ``serve``, every ``reap_every`` seconds, so that busy job
  slots never delay it): attempts whose heartbeat is older than ``lost_after`` end
  ``errored`` "Worker host lost …" (``Store.reap_lost``); jobs of workers whose procrastinate
  heartbeat is that old are finished ``failed``, which releases their lock; their keys are
  kicked. A stalled job is never retried (``reference/scale-out.md`` §5: ``retry_job`` of a
  stalled drain collides with the key's queueing lock, and a resumed zombie could finish the
  retried job).
- ``reconcile()``: keys with queued builds and no ``todo``/``doing`` drain job are kicked.

Shutdown (``WorkerPool.shutdown``, whose grace may exceed ``lost_after``): once
``stop_event`` is set the procrastinate worker is stopped, and procrastinate's own shutdown
cancels its worker heartbeat *before* it waits for the running jobs. Another host's
``_fail_stalled_jobs`` may then finish a draining job ``failed`` mid-grace and release its
lock. That is harmless, so serving does not refuse a long grace (decided for issue 11): the
attempt itself is not reaped, because its ``_Beat`` keeps renewing ``attempts.heartbeat_at``
(what ``reap_lost`` reads) until the handler returns, grace or not; a ``drain(key)`` another
host starts meanwhile claims nothing (``claim_key`` starts nothing while an attempt of the
key runs); and this drain kicks its key after its handler returns (the build that waited,
or the next attempt the shutdown queued). Only the stalled job's row says ``failed``.

Kicks, reaps and reconciles use a synchronous connection pool of their own, so they work
from any thread (web requests, drain threads, the reaper); the worker's event loop has its
asynchronous pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from procrastinate import App, PsycopgConnector, SyncPsycopgConnector, sql
from procrastinate.exceptions import AlreadyEnqueued
from procrastinate.job_context import JobContext
from procrastinate.worker import Worker
from sqlalchemy.engine import make_url

from bot.dispatch.base import Handler, StoreFence
from bot.procs import worker_name
from bot.store.base import Store

logger = logging.getLogger(__name__)

DRAIN_TASK = "wercker_bot.drain"
QUEUE = "builds"
RESTART_SECONDS = 2.0
"""How long ``serve`` waits before starting a worker again after it stopped by itself."""
STOP_POLL_SECONDS = 0.2


def conninfo(url: str) -> str:
    """The libpq connection string of an SQLAlchemy URL (``postgresql+psycopg://…``)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


class ProcrastinateDispatcher:
    """``Dispatcher`` on procrastinate (see the module docstring). ``lost_after`` and
    ``reap_every`` are ``[store] lost_after_seconds`` and ``reap_every_seconds``."""

    def __init__(
        self,
        store: Store,
        url: str,
        *,
        lost_after: float,
        reap_every: float,
        poll: float = 5.0,
    ) -> None:
        self.store = store
        self.lost_after = lost_after
        self.reap_every = reap_every
        self.poll = poll
        self._conninfo = conninfo(url)
        self._handler: Handler | None = None
        self._sync_lock = threading.Lock()
        self._sync_app: App | None = None

    # -- kicking, from any thread ---------------------------------------------------------

    def _app_for_kicks(self) -> App:
        with self._sync_lock:
            if self._sync_app is None:
                connector = SyncPsycopgConnector(conninfo=self._conninfo, min_size=1, max_size=4)
                self._sync_app = App(connector=connector).open()
            return self._sync_app

    def kick(self, key: str) -> None:
        """Defers ``drain(key)`` unless one is already waiting (see the module docstring)."""
        deferrer = self._app_for_kicks().configure_task(
            DRAIN_TASK, lock=key, queueing_lock=key, queue=QUEUE
        )
        with contextlib.suppress(AlreadyEnqueued):
            deferrer.defer(key=key)

    def close(self) -> None:
        """Closes the pool kicks use (it reopens on the next kick)."""
        with self._sync_lock:
            if self._sync_app is not None:
                self._sync_app.close()
                self._sync_app = None

    # -- reaping and reconciling ----------------------------------------------------------

    def reap(self) -> list[int]:
        """See ``Dispatcher.reap``: attempts, then stalled jobs, then kicks."""
        lost = self.store.reap_lost(self.lost_after)
        for item in lost:
            logger.warning(
                "attempt %s (%s): worker host lost; its key is kicked", item.attempt_id, item.key
            )
        keys = [item.key for item in lost] + self._fail_stalled_jobs()
        for key in dict.fromkeys(keys):
            self.kick(key)
        return [item.attempt_id for item in lost]

    def _fail_stalled_jobs(self) -> list[str]:
        """Finishes ``failed`` the jobs of workers silent for ``lost_after`` seconds (or
        whose worker row is gone); returns their drain keys."""
        connector = self._app_for_kicks().connector
        rows = connector.execute_query_all(
            query=sql.queries["select_stalled_jobs_by_heartbeat"],
            queue=None,
            task_name=None,
            seconds_since_heartbeat=self.lost_after,
        )
        keys: list[str] = []
        for row in rows:
            try:
                connector.execute_query(
                    query=sql.queries["finish_job"],
                    job_id=row["id"],
                    status="failed",
                    delete_job=False,
                )
            except Exception:
                # Another reaper finished it first, or its worker did after all.
                logger.debug("stalled job %s was finished meanwhile", row["id"], exc_info=True)
                continue
            logger.warning("job %s (%s) of a lost worker finished failed", row["id"], row["lock"])
            if row["task_name"] == DRAIN_TASK and row["lock"]:
                keys.append(str(row["lock"]))
        return keys

    def reconcile(self) -> list[str]:
        """See ``Dispatcher.reconcile``."""
        manager = self._app_for_kicks().job_manager
        pending = {
            job.lock
            for status in ("todo", "doing")
            for job in manager.list_jobs(task=DRAIN_TASK, status=status)
        }
        kicked = [key for key in self.store.queued_keys() if key not in pending]
        for key in kicked:
            logger.warning("%s has queued builds and no drain job: kicked", key)
            self.kick(key)
        return kicked

    def _maintain(self, stop_event: threading.Event) -> None:
        while not stop_event.wait(self.reap_every):
            for step in (self.reap, self.reconcile):
                try:
                    step()
                except Exception:
                    logger.exception("%s failed; again in %s s", step.__name__, self.reap_every)

    # -- serving --------------------------------------------------------------------------

    def serve(self, handler: Handler, concurrency: int, stop_event: threading.Event) -> None:
        """See ``Dispatcher.serve``. A procrastinate worker that stops by itself (its
        database connection lost, its worker row pruned while it was paused) is started
        again after ``RESTART_SECONDS``, as a new procrastinate worker."""
        self._handler = handler
        maintainer = threading.Thread(
            target=self._maintain, args=(stop_event,), name="reaper", daemon=True
        )
        maintainer.start()
        try:
            while not stop_event.is_set():
                try:
                    asyncio.run(self._run_worker(concurrency, stop_event))
                except Exception:
                    logger.exception("the procrastinate worker failed")
                if not stop_event.is_set():
                    logger.warning("the procrastinate worker stopped; starting it again")
                    stop_event.wait(RESTART_SECONDS)
        finally:
            maintainer.join()

    def _worker_app(self) -> App:
        app = App(connector=PsycopgConnector(conninfo=self._conninfo, min_size=1))
        app.task(name=DRAIN_TASK, queue=QUEUE, pass_context=True)(self._drain)
        return app

    async def _run_worker(self, concurrency: int, stop_event: threading.Event) -> None:
        # Sync jobs run on the loop's default executor (asgiref), whose default size is
        # min(32, CPUs + 4): it would cap ``concurrency`` silently on a small host.
        asyncio.get_running_loop().set_default_executor(
            ThreadPoolExecutor(max_workers=concurrency + 1, thread_name_prefix="drain")
        )
        app = self._worker_app()
        async with app.open_async():
            worker = Worker(app=app, **self._worker_options(concurrency))
            run = asyncio.create_task(worker.run())
            while not run.done() and not stop_event.is_set():
                await asyncio.wait({run}, timeout=STOP_POLL_SECONDS)
            if not run.done():
                worker.stop()
            await run

    def _worker_options(self, concurrency: int) -> dict[str, Any]:
        return {
            "queues": [QUEUE],
            "name": worker_name("procrastinate"),
            "concurrency": concurrency,
            "install_signal_handlers": False,  # the bot's own shutdown sets stop_event
            "fetch_job_polling_interval": self.poll,
            "update_heartbeat_interval": max(0.2, self.lost_after / 4),
            "stalled_worker_timeout": self.lost_after,
            "delete_jobs": "successful",
        }

    def _drain(self, context: JobContext, key: str) -> None:
        """The ``drain(key)`` job (see the module docstring)."""
        handler = self._handler
        assert handler is not None, "drain jobs run only under serve()"
        assert context.job.id is not None
        token = worker_name(f"job{context.job.id}")
        claim = self.store.claim_key(key, token)
        if claim is None:
            logger.info("%s: nothing to run", key)
            return
        fence = StoreFence(self.store, claim.attempt_id, token)
        beat = _Beat(fence, max(0.2, self.lost_after / 4))
        beat.start()
        try:
            handler(claim, fence)
        except Exception:
            logger.exception("attempt %s crashed its drain job", claim.attempt_id)
        finally:
            beat.stop()
        # Newer pushes that waited, or the next attempt a shutdown queued in place of this
        # one (``restart_attempt``): nothing else would kick the key for the latter.
        if self.store.key_has_queued(key):
            self.kick(key)


class _Beat:
    """Renews a running attempt's heartbeat through its fence every ``every`` seconds, so
    a live build with a quiet step is never reaped, during a shutdown's grace too (see the
    module docstring); stops at the first refusal, which itself stops the attempt
    (``StoreFence.refused`` runs its ``on_refused``: the handler's ``Abort``)."""

    def __init__(self, fence: StoreFence, every: float) -> None:
        self._fence = fence
        self._every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"beat-{fence.attempt_id}", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            try:
                self._fence.check()
            except Exception:
                if self._fence.lost:  # the refusal has already aborted the attempt
                    logger.warning(
                        "attempt %s: reaped while away; stopping it", self._fence.attempt_id
                    )
                    return
                logger.warning("attempt %s: heartbeat failed", self._fence.attempt_id)
