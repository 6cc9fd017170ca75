"""What the composition root (``bot.wiring``) hands to the web app and the workers.

Only ``bot.wiring`` builds a ``Services``; everything else receives one."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.dispatch.base import Dispatcher
from bot.forges.base import Forge
from bot.masking import Masker
from bot.outbox import StatusDelivery
from bot.pushers.base import EngineImagePusher, Pusher
from bot.pushers.model import ImageSpec
from bot.reporter import Reporter
from bot.settings import RepoSettings, Settings
from bot.store.base import Store

if TYPE_CHECKING:  # the web app receives Services too: it need not load the runners
    from bot.logarchive import LogArchive
    from bot.runners.select import RunnerChooser


@dataclass
class Services:
    """The long-lived objects of one process."""

    settings: Settings
    store: Store
    pusher: Pusher[ImageSpec]
    """The daemonless pusher."""
    engine_pusher: EngineImagePusher
    """Pushes the box container or a built image, and builds images, on the docker
    runner's engine; it presents the same credential resolver as ``pusher``."""
    reporter: Reporter
    forge: Forge
    """Verifies and parses webhook deliveries (web) and posts commit statuses (outbox)."""
    status_delivery: StatusDelivery
    """Posts the outbox's rows through ``forge``; the worker pool runs it."""
    runners: Callable[[], RunnerChooser]
    """A fresh chooser for each attempt (it probes the host at most once): the runner kind a
    plan needs (``bot.plan.compile_plan`` asks it), then that runner."""
    dispatcher: Dispatcher
    """Wakes workers for queued builds (intake kicks it after each commit) and runs them
    (the worker pool serves it): embedded on SQLite, procrastinate on PostgreSQL."""
    log_archive: LogArchive | None = None
    """Where finished logs are copied (``[logs] archive``), or None."""

    def masker_for(self, repo: RepoSettings | None) -> Masker:
        """A masker for the bot's own secrets plus ``repo``'s."""
        masker = Masker(self.settings.secret_values())
        if repo is not None:
            masker.add(repo.secrets.values())
        return masker
