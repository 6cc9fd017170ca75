"""Worker threads: run the queued attempts the dispatcher hands out; deliver statuses;
recover attempts abandoned by dead processes and sweep away what they left on disk; copy
finished logs to the archive; shut down gracefully (``WorkerPool.shutdown``)."""

from __future__ import annotations

import contextlib
import logging
import queue
import shutil
import threading
import time
from dataclasses import dataclass

from bot.build import execute
from bot.dispatch.base import FENCE_REFUSED, AttemptFenced, StoreFence
from bot.dispatch.fence import fenced_services
from bot.logarchive import AttemptRef, archive_finished, archive_pending
from bot.models import WORKER_RESTARTED
from bot.runners.base import Abort
from bot.services import Services
from bot.store.rows import Claim

logger = logging.getLogger(__name__)

# How often the running process looks for attempts of dead processes and their leftovers.
RECOVERY_SECONDS = 60.0
# How often a worker looks for finished logs the archive lacks (it was down at the finish).
ARCHIVE_SWEEP_SECONDS = 600.0
STOP_SECONDS = 4.0
"""How long attempts stopped at the end of the grace get to end (their steps killed, the
next attempt queued): a platform sends SIGKILL about 30 s after SIGTERM, and the default
grace is 25 s."""
ARCHIVE_BACKLOG = 64
"""Finished logs waiting for the archive thread; one more is skipped (the periodic
``archive_pending`` sweep copies it later)."""


@dataclass(frozen=True)
class _Running:
    """An attempt a worker thread of this process is executing, and its stop request."""

    claim: Claim
    abort: Abort


class WorkerPool:
    """Up to ``count`` attempts at once, served by ``services.dispatcher``; one
    status-delivery thread, one recovery thread (which calls ``Dispatcher.reap``, through
    ``recover``, for every dispatcher) and, with a log archive, one archive thread
    (``_Archiver``: a finished attempt's log is copied beside the handlers, never in them).

    Everything it runs comes from ``services`` (built by ``bot.wiring``): the dispatcher that
    hands out claims (each run with ``fenced_services``, so a worker reaped while away writes
    nothing), the status delivery it runs (posting through ``services.forge``), the pusher
    whose spools it sweeps, the log archive. It builds no collaborator of its own.

    ``start`` and then the recovery thread, every ``recover_every`` seconds, call
    ``recover``: attempts left ``running`` by dead processes are finished as errored
    ("worker died"), and what crashed attempts left on disk is removed by this running
    process, without waiting for a restart.

    ``shutdown(grace)`` ends it the way a platform's SIGTERM asks: no new claims, running
    attempts get ``grace`` seconds, then the rest are stopped and queued again."""

    def __init__(
        self, services: Services, count: int, *, recover_every: float = RECOVERY_SECONDS
    ) -> None:
        self.services = services
        self.count = count
        self.recover_every = recover_every
        self.stop_event = threading.Event()  # set: claim nothing more
        self._delivery_stop = threading.Event()  # statuses are posted until the very end
        self.threads: list[threading.Thread] = []
        self.workers: list[threading.Thread] = []
        # Attempts this process's threads are executing: their workspaces are never swept,
        # whatever the store says (a stale heartbeat may have made recovery finish one).
        self._active: dict[int, _Running] = {}
        self._active_lock = threading.Lock()
        self._aborting = False  # set under the lock: an attempt claimed now is stopped at once
        self._stopping_since: float | None = None
        self.archiver = _Archiver(services)

    def start(self) -> None:
        self.recover()
        if self.count > 0:
            thread = threading.Thread(
                target=self.services.dispatcher.serve,
                args=(self._execute, self.count, self.stop_event),
                name="dispatch",
                daemon=True,
            )
            thread.start()
            self.threads.append(thread)
            self.workers.append(thread)
        delivery = self.services.status_delivery
        if delivery.forge.can_post:
            thread = threading.Thread(
                target=delivery.run, args=(self._delivery_stop,), name="statuses", daemon=True
            )
            thread.start()
            self.threads.append(thread)
        else:
            logger.warning(
                "the forge cannot post (no [github] token?): commit statuses stay in the "
                "outbox until it can"
            )
        thread = threading.Thread(target=self._recover, name="recovery", daemon=True)
        thread.start()
        self.threads.append(thread)
        if self.services.log_archive is not None:
            self.threads.append(self.archiver.start())

    def _execute(self, claim: Claim, fence: StoreFence) -> None:
        """The dispatcher's handler: runs one claimed attempt, fenced, with its own
        ``Abort``, then hands its log to the archive thread (the upload never holds the
        handler, so the key's next build does not wait for the archive).

        The ``Abort`` is set by ``shutdown`` (requeue), or by the fence the moment it
        refuses (``FENCE_REFUSED``, no requeue: the reaper ended the attempt and the
        branch's newer build may be running elsewhere): the running step is killed and the
        rest skipped, every write of it refused by the fenced store."""
        running = _Running(claim, Abort())
        fence.on_refused(lambda: running.abort.set(FENCE_REFUSED))
        with self._active_lock:
            self._active[claim.attempt_id] = running
            if self._aborting:  # claimed as the grace ran out
                running.abort.set(WORKER_RESTARTED, requeue=True)
        try:
            result = execute(claim, fenced_services(self.services, fence), running.abort)
            if self.stop_event.is_set() and not running.abort.is_set():
                logger.info(
                    "build %s attempt %d finished within the grace period: %s",
                    claim.build.id, claim.attempt_number, result,
                )  # fmt: skip
        except AttemptFenced as err:  # reaped while away: the reaper wrote its end
            logger.warning("%s; stopped without writing its end", err)
            return
        except Exception:  # never lose a worker thread; recovery ends the attempt
            logger.exception("attempt %s crashed its worker", claim.attempt_id)
        finally:
            with self._active_lock:
                self._active.pop(claim.attempt_id, None)
        if fence.lost:
            logger.warning("attempt %s was reaped while running: stopped", claim.attempt_id)
        # Not while stopping (the thread is going away; the sweep copies it later), nor a
        # reaped attempt's: its log is the reaper's to settle.
        elif not self.stop_event.is_set():
            self.archiver.offer(AttemptRef.from_claim(claim))

    def recover(self) -> list[int]:
        """Finishes the attempts of dead processes (``Dispatcher.reap``: on one host
        ``Store.recover_dead``; across hosts, those silent past ``lost_after``), then at once
        removes crash leftovers: workspaces of attempts not running in a live process and
        layer spools of dead processes (``DaemonlessPusher.sweep``), and under the docker or
        auto runner the box containers of dead processes (``sweep_dead_boxes``; an engine
        that does not answer is logged and skipped). Returns the attempts recovered. Never
        raises: each part that fails is logged and the rest still runs."""
        recovered: list[int] = []
        try:
            recovered = self.services.dispatcher.reap()
        except Exception:
            logger.exception("recovering the attempts of dead workers failed")
        if recovered:
            logger.warning("finished %d attempt(s) left by a dead worker", len(recovered))
        try:
            removed = self._sweep_workspaces()
            if removed:
                logger.warning("removed %d workspace(s) left by dead attempts", removed)
        except Exception:
            logger.exception("sweeping the workspaces of dead attempts failed")
        try:
            spools = self.services.pusher.sweep()
            if spools:
                logger.warning("removed %d layer spool(s) left by dead processes", len(spools))
        except Exception:
            logger.exception("sweeping the layer spools of dead processes failed")
        kind = self.services.settings.runner_kind
        if kind in ("docker", "auto"):
            # Box containers of dead processes still run their step, secrets in its env.
            from bot.runners.docker.sweep import EngineUnavailable, sweep_dead_boxes

            try:
                boxes = sweep_dead_boxes(self.services.settings.docker_host)
                if boxes:
                    logger.warning("removed %d box container(s) left by dead processes", len(boxes))
            except EngineUnavailable as err:
                # Under ``auto`` an absent engine is normal (builds run locally).
                level = logging.WARNING if kind == "docker" else logging.DEBUG
                logger.log(level, "not sweeping box containers of dead processes: %s", err)
            except Exception:
                logger.exception("sweeping the box containers of dead processes failed")
        return recovered

    def _sweep_workspaces(self) -> int:
        """Removes workspaces (``work/attempt-N``) of attempts that are not running in a
        live process; returns how many went."""
        work = self.services.settings.data_dir / "work"
        if not work.is_dir():
            return 0
        # Listed before the store is asked: an attempt is marked running before its
        # workspace is made, so a workspace seen here whose attempt was just claimed is
        # already in ``running``; asking first could sweep a workspace made in between.
        found = list(work.glob("attempt-*"))
        running = set(self.services.store.running_attempt_ids())
        with self._active_lock:
            running |= set(self._active)
        removed = 0
        for path in found:
            suffix = path.name.removeprefix("attempt-")
            if suffix.isdigit() and int(suffix) not in running:
                shutil.rmtree(path, ignore_errors=True)
                if not path.exists():
                    removed += 1
        return removed

    def _recover(self) -> None:
        last_sweep = time.monotonic()
        while not self.stop_event.wait(self.recover_every):
            self.recover()
            archive = self.services.log_archive
            if archive is not None and time.monotonic() - last_sweep >= ARCHIVE_SWEEP_SECONDS:
                last_sweep = time.monotonic()
                archive_pending(self.services.store, archive)

    def stop(self, timeout: float = 5.0) -> None:
        """Stops taking new work at once, without waiting for running attempts: they die
        with the process and are recovered as errored ("worker died") by any live
        process's recovery (or the next one to start). ``shutdown`` is the graceful way."""
        self.stop_event.set()
        self._delivery_stop.set()
        self.archiver.abandon()
        for thread in self.threads:
            if thread is not self.archiver.thread:
                thread.join(timeout=timeout / max(1, len(self.threads)))

    def stop_claiming(self) -> None:
        """Claims nothing more from now on (safe in a signal handler); the grace of
        ``shutdown`` counts from the first call."""
        if self._stopping_since is None:
            self._stopping_since = time.monotonic()
        self.stop_event.set()

    def shutdown(self, grace: float, stop_wait: float = STOP_SECONDS) -> list[int]:
        """Stops gracefully, as on a platform's SIGTERM, and returns the attempts stopped.

        Claims nothing more (``stop_claiming``); running attempts get ``grace`` seconds from
        then to finish; each one still running after that is stopped (``Abort``: its
        script step killed, a push let finish, the steps left not run), ends ``errored``
        ("Worker restarted", its open statuses resolved) and its build is queued again as
        the next attempt (``Attempt.stopped``), all within ``stop_wait`` seconds. One that
        does not end by then is left to recovery ("worker died"). Every case is logged."""
        self.stop_claiming()
        assert self._stopping_since is not None
        with self._active_lock:
            busy = len(self._active)
        logger.warning(
            "stopping: claiming no more builds; %d running build(s) get %g s to finish",
            busy, grace,
        )  # fmt: skip
        self._join_workers(self._stopping_since + grace)
        with self._active_lock:
            self._aborting = True
            left = list(self._active.values())
        for running in left:
            claim = running.claim
            logger.warning(
                "build %s attempt %d still running after %g s: stopping it",
                claim.build.id, claim.attempt_number, grace,
            )  # fmt: skip
            running.abort.set(WORKER_RESTARTED, requeue=True)
        self._join_workers(time.monotonic() + stop_wait)
        with self._active_lock:
            stuck = list(self._active.values())
        for running in stuck:
            logger.error(
                "build %s attempt %d did not stop within %g s; recovery will end it",
                running.claim.build.id, running.claim.attempt_number, stop_wait,
            )  # fmt: skip
        self._delivery_stop.set()
        self.archiver.abandon()  # an upload under way is not waited for
        for thread in self.threads:
            if thread not in self.workers and thread is not self.archiver.thread:
                thread.join(timeout=1.0)
        self.services.dispatcher.close()
        logger.warning("workers stopped")
        return [r.claim.attempt_id for r in left]

    def _join_workers(self, deadline: float) -> None:
        for thread in self.workers:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))


class _Archiver:
    """Copies finished logs to the archive on a thread of its own, one at a time, so an
    archive upload (or an archive that hangs) never holds a drain handler, and with it the
    key's lock. ``offer`` never blocks: past ``ARCHIVE_BACKLOG`` waiting logs it skips the
    log, which stays in the store for ``archive_pending``'s sweep. ``abandon`` drops what
    waits and returns at once; a copy under way ends with the process (the daemon thread)
    or by itself (``archive_finished`` never raises)."""

    def __init__(self, services: Services, backlog: int = ARCHIVE_BACKLOG) -> None:
        self.services = services
        self._queue: queue.Queue[AttemptRef | None] = queue.Queue(maxsize=backlog)
        self.thread = threading.Thread(target=self._run, name="log-archive", daemon=True)

    def start(self) -> threading.Thread:
        self.thread.start()
        return self.thread

    def offer(self, attempt: AttemptRef) -> bool:
        """Queues ``attempt``'s log for the archive; ``False`` when it was skipped."""
        try:
            self._queue.put_nowait(attempt)
        except queue.Full:
            logger.warning(
                "attempt %s: %d logs wait for the archive; the sweep copies this one later",
                attempt.attempt_id, self._queue.maxsize,
            )  # fmt: skip
            return False
        return True

    def abandon(self) -> None:
        """Drops the logs that wait (the sweep copies them later) and ends the thread
        after the copy under way, if any. Never waits."""
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        # Offers that raced in after the stop may fill it: the daemon thread dies with us.
        with contextlib.suppress(queue.Full):
            self._queue.put_nowait(None)

    def _run(self) -> None:
        while (attempt := self._queue.get()) is not None:
            archive_finished(self.services.store, self.services.log_archive, attempt)
