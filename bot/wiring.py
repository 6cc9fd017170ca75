"""The composition root: builds concrete objects from ``Settings``. Nothing else reads the
config or constructs long-lived collaborators."""

from __future__ import annotations

from bot.build import Services
from bot.pushers.daemonless import DaemonlessPusher
from bot.settings import Settings
from bot.store.store import Store


def build_services(settings: Settings) -> Services:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = Store(settings.db_path)
    pusher = DaemonlessPusher(dict(settings.registries), settings.data_dir / "blob-cache")
    return Services(settings=settings, store=store, pusher=pusher)
