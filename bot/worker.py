"""Worker threads: claim queued attempts from the store and run them; deliver statuses;
recover attempts abandoned by dead processes and sweep away what they left on disk."""

from __future__ import annotations

import logging
import shutil
import threading

from bot.build import execute
from bot.errors import StoreUnavailable
from bot.procs import worker_name
from bot.services import Services

logger = logging.getLogger(__name__)

# How often the running process looks for attempts of dead processes and their leftovers.
RECOVERY_SECONDS = 60.0
CLAIM_RETRY_SECONDS = 2.0


class WorkerPool:
    """``count`` build threads, one status-delivery thread and one recovery thread.

    Everything it runs comes from ``services`` (built by ``bot.wiring``): the store it claims
    from, the status delivery it runs (posting through ``services.forge``), the pusher whose
    spools it sweeps. It builds no collaborator of its own.

    ``start`` and then the recovery thread, every ``recover_every`` seconds, call
    ``recover``: attempts left ``running`` by dead processes are finished as errored
    ("worker died"), and what crashed attempts left on disk is removed by this running
    process, without waiting for a restart."""

    def __init__(
        self, services: Services, count: int, *, recover_every: float = RECOVERY_SECONDS
    ) -> None:
        self.services = services
        self.count = count
        self.recover_every = recover_every
        self.stop_event = threading.Event()
        self.threads: list[threading.Thread] = []
        # Attempts this process's threads are executing: their workspaces are never swept,
        # whatever the store says (a stale heartbeat may have made recovery finish one).
        self._active: set[int] = set()
        self._active_lock = threading.Lock()

    def start(self) -> None:
        self.recover()
        for i in range(self.count):
            thread = threading.Thread(target=self._work, args=(i,), name=f"worker-{i}", daemon=True)
            thread.start()
            self.threads.append(thread)
        delivery = self.services.status_delivery
        if delivery.forge.can_post:
            thread = threading.Thread(
                target=delivery.run, args=(self.stop_event,), name="statuses", daemon=True
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

    def _work(self, index: int) -> None:
        name = worker_name(f"w{index}")
        store = self.services.store
        failing = False
        while not self.stop_event.is_set():
            try:
                claim = store.claim_next(name)
            except StoreUnavailable as err:
                # A full disk lasts: say so once, with SQLite's own reason, then once more
                # when it is over, not with a traceback every two seconds.
                if not failing:
                    logger.error("%s: cannot claim work (%s); retrying every 2 s", name, err)
                failing = True
                self.stop_event.wait(CLAIM_RETRY_SECONDS)
                continue
            except Exception:
                logger.exception("claiming work failed; retrying in 2 s")
                self.stop_event.wait(CLAIM_RETRY_SECONDS)
                continue
            if failing:
                logger.warning("%s: the store answers again; claiming work", name)
                failing = False
            if claim is None:
                self.stop_event.wait(0.3)
                continue
            with self._active_lock:
                self._active.add(claim.attempt_id)
            try:
                execute(claim, self.services)
            except Exception:  # never lose a worker thread; recovery ends the attempt
                logger.exception("attempt %s crashed its worker", claim.attempt_id)
            finally:
                with self._active_lock:
                    self._active.discard(claim.attempt_id)

    def recover(self) -> list[int]:
        """Finishes the attempts of dead processes (``Store.recover_dead``), then at once
        removes crash leftovers: workspaces of attempts not running in a live process and
        layer spools of dead processes (``DaemonlessPusher.sweep``), and under the docker or
        auto runner the box containers of dead processes (``sweep_dead_boxes``; an engine
        that does not answer is logged and skipped). Returns the attempts recovered. Never
        raises: each part that fails is logged and the rest still runs."""
        recovered: list[int] = []
        try:
            recovered = self.services.store.recover_dead()
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
            running |= self._active
        removed = 0
        for path in found:
            suffix = path.name.removeprefix("attempt-")
            if suffix.isdigit() and int(suffix) not in running:
                shutil.rmtree(path, ignore_errors=True)
                if not path.exists():
                    removed += 1
        return removed

    def _recover(self) -> None:
        while not self.stop_event.wait(self.recover_every):
            self.recover()

    def stop(self, timeout: float = 5.0) -> None:
        """Stops taking new work; running attempts finish in their daemon threads or are
        recovered as errored by any live process's recovery (or the next one to start)."""
        self.stop_event.set()
        for thread in self.threads:
            thread.join(timeout=timeout / max(1, len(self.threads)))
