"""Worker threads: claim queued attempts from the store and run them; deliver statuses;
recover attempts abandoned by dead processes."""

from __future__ import annotations

import logging
import shutil
import threading

from bot.build import Services, execute
from bot.forges.github import StatusClient
from bot.outbox import StatusDelivery
from bot.store.store import worker_name

logger = logging.getLogger(__name__)

RECOVERY_SECONDS = 60.0


class WorkerPool:
    """``count`` build threads plus one status-delivery thread. ``start`` first finishes
    attempts left ``running`` by dead processes as errored ("worker died")."""

    def __init__(self, services: Services, count: int) -> None:
        self.services = services
        self.count = count
        self.stop_event = threading.Event()
        self.threads: list[threading.Thread] = []

    def start(self) -> None:
        recovered = self.services.store.recover_dead()
        if recovered:
            logger.warning("finished %d attempt(s) left by a dead worker", len(recovered))
        self._sweep_workspaces()
        for i in range(self.count):
            thread = threading.Thread(target=self._work, args=(i,), name=f"worker-{i}", daemon=True)
            thread.start()
            self.threads.append(thread)
        github = self.services.settings.github
        if github.token:
            delivery = StatusDelivery(self.services.store, StatusClient.from_settings(github))
            thread = threading.Thread(
                target=delivery.run, args=(self.stop_event,), name="statuses", daemon=True
            )
            thread.start()
            self.threads.append(thread)
        else:
            logger.warning(
                "no [github] token: commit statuses stay in the outbox until one is configured"
            )
        thread = threading.Thread(target=self._recover, name="recovery", daemon=True)
        thread.start()
        self.threads.append(thread)

    def _work(self, index: int) -> None:
        name = worker_name(f"w{index}")
        store = self.services.store
        while not self.stop_event.is_set():
            try:
                claim = store.claim_next(name)
            except Exception:
                logger.exception("claiming work failed; retrying")
                self.stop_event.wait(2.0)
                continue
            if claim is None:
                self.stop_event.wait(0.3)
                continue
            try:
                execute(claim, self.services)
            except Exception:  # never lose a worker thread; recovery ends the attempt
                logger.exception("attempt %s crashed its worker", claim.attempt_id)

    def _sweep_workspaces(self) -> None:
        """Removes workspaces of attempts that are not running (left by a dead process)."""
        work = self.services.settings.data_dir / "work"
        if not work.is_dir():
            return
        running = set(self.services.store.running_attempt_ids())
        for path in work.glob("attempt-*"):
            suffix = path.name.removeprefix("attempt-")
            if suffix.isdigit() and int(suffix) not in running:
                shutil.rmtree(path, ignore_errors=True)

    def _recover(self) -> None:
        while not self.stop_event.wait(RECOVERY_SECONDS):
            try:
                self.services.store.recover_dead()
            except Exception:
                logger.exception("recovery sweep failed")

    def stop(self, timeout: float = 5.0) -> None:
        """Stops taking new work; running attempts finish in their daemon threads or are
        recovered as errored by the next process that starts."""
        self.stop_event.set()
        for thread in self.threads:
            thread.join(timeout=timeout / max(1, len(self.threads)))
