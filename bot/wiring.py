"""The composition root: builds concrete objects from ``Settings``. Nothing else reads the
config or constructs long-lived collaborators."""

from __future__ import annotations

import contextlib

from bot.pushers.daemonless import DaemonlessPusher
from bot.reporter import Reporter
from bot.services import Services
from bot.settings import Settings
from bot.store.migrate import SchemaError, check_schema
from bot.store.store import Store


def build_services(settings: Settings) -> Services:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    # Box containers run as root on a bind-mounted cache under data_dir: what they leave
    # there (setuid binaries, device nodes, links) must be out of reach of the host's other
    # users. A data_dir the bot does not own keeps its mode (the operator chose it).
    with contextlib.suppress(OSError):
        settings.data_dir.chmod(0o700)
    reporter = Reporter(settings.github.status_context, settings.base_url)
    store = Store(settings.db_path, reporter)
    # serve, worker and the web app refuse a database that is not at the head revision
    # (``wercker-bot migrate`` brings it there); a new one is created at head.
    try:
        check_schema(store, settings.config_path)
    except SchemaError:
        store.engine.dispose()
        raise
    pusher = DaemonlessPusher(dict(settings.registries), settings.data_dir / "blob-cache")
    return Services(settings=settings, store=store, pusher=pusher, reporter=reporter)
