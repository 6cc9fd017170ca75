"""What the composition root (``bot.wiring``) hands to the web app and the workers.

Only ``bot.wiring`` builds a ``Services``; everything else receives one."""

from __future__ import annotations

from dataclasses import dataclass

from bot.masking import Masker
from bot.pushers.base import Pusher
from bot.pushers.model import ImageSpec
from bot.reporter import Reporter
from bot.settings import RepoSettings, Settings
from bot.store.store import Store


@dataclass
class Services:
    """The long-lived objects of one process."""

    settings: Settings
    store: Store
    pusher: Pusher[ImageSpec]
    reporter: Reporter

    def masker_for(self, repo: RepoSettings | None) -> Masker:
        """A masker for the bot's own secrets plus ``repo``'s."""
        masker = Masker(self.settings.secret_values())
        if repo is not None:
            masker.add(repo.secrets.values())
        return masker
