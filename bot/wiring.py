"""The composition root: builds concrete objects from ``Settings``. Nothing else reads the
config or constructs long-lived collaborators.

What is built here: the reporter (``build_reporter``), the store, the forge
(``build_forge``), the pushers (``build_pusher``, ``build_engine_pusher``), the status
delivery (the outbox's poster, on the forge) and the ``Services`` that carries them to the
web app and the worker pool; and the store that ``wercker-bot migrate`` upgrades
(``migration_store``)."""

from __future__ import annotations

import contextlib
import functools

from bot.dispatch import dispatcher_for
from bot.engine import CredentialResolver
from bot.errors import ConfigError
from bot.forges.base import Forge
from bot.forges.github.forge import GitHubForge
from bot.logarchive import open_archive
from bot.outbox import StatusDelivery
from bot.pushers.base import EngineImagePusher
from bot.pushers.credentials import RegistryCredentials
from bot.pushers.daemonless import DaemonlessPusher
from bot.reporter import Reporter
from bot.runners.select import RunnerChooser, check_runner_settings
from bot.services import Services
from bot.settings import Settings
from bot.store.migrate import SchemaError, check_schema
from bot.store.sql import SqlStore


def build_forge(settings: Settings) -> Forge:
    """The forge the settings configure. GitHub is the only one today; a second forge is
    chosen here, by its own settings section."""
    return GitHubForge(settings.github)


def build_reporter(settings: Settings) -> Reporter:
    """The one reporter: the status context and the bot's URL for statuses' target URLs."""
    return Reporter(settings.github.status_context, settings.base_url)


def build_credentials(settings: Settings) -> CredentialResolver:
    """The one registry credential resolver of a process: box pulls (the docker runner),
    the engine pusher and the daemonless pusher all present what it resolves. Built once,
    handed to ``build_pusher``, ``build_engine_pusher`` and ``build_runners``."""
    return RegistryCredentials(settings.registries)


def build_pusher(settings: Settings, credentials: CredentialResolver) -> DaemonlessPusher:
    """The daemonless pusher, with the configured registries, its blob cache and the
    process's credential resolver."""
    return DaemonlessPusher(
        dict(settings.registries), settings.data_dir / "blob-cache", credentials=credentials
    )


def build_engine_pusher(settings: Settings, credentials: CredentialResolver) -> EngineImagePusher:
    """The engine pusher (pushes and builds on the docker runner's engines), with the
    process's credential resolver. The docker SDK loads only when it is built."""
    del settings  # the engine's own daemon config governs its pushes (see transfer.py)
    from bot.pushers.engine import EnginePusher

    return EnginePusher(credentials)


def build_runners(settings: Settings, credentials: CredentialResolver) -> RunnerChooser:
    """A runner chooser for one attempt (or one ``wercker-bot run``), with the process's
    credential resolver, which the docker runner presents for box pulls and hands to the
    engine pusher."""
    return RunnerChooser(settings, credentials)


def migration_store(settings: Settings) -> SqlStore:
    """The store as it is on disk, without the schema check: what ``wercker-bot migrate``
    upgrades. The caller disposes of its engine."""
    return SqlStore(settings.database.url, build_reporter(settings))


def check_startable(settings: Settings) -> None:
    """A webhook receiver refuses to start when its forge could not verify deliveries: no
    webhook secret, unless told it is insecure."""
    if not settings.github.webhook_secret and not settings.github.insecure_skip_signature:
        raise ConfigError(
            'no webhook secret: set [github] webhook_secret (e.g. "${GITHUB_WEBHOOK_SECRET}"), '
            "or insecure_skip_signature = true for local experiments only",
            "github.webhook_secret",
        )


def build_web_services(settings: Settings) -> Services:
    """``build_services`` for a process that receives webhooks (``serve``, gunicorn), after
    ``check_startable``."""
    check_startable(settings)
    return build_services(settings)


def build_services(settings: Settings, *, forge: Forge | None = None) -> Services:
    """Every long-lived object of one process. ``forge`` replaces the configured one (tests
    hand in ``tests/fakes/forge.py``); everything that posts or verifies then uses it.
    Raises ``ConfigError`` for a runner config that would expose the bot's files to steps,
    and ``SchemaError`` for a database that needs ``wercker-bot migrate``."""
    check_runner_settings(settings)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    # Box containers run as root on a bind-mounted cache under data_dir: what they leave
    # there (setuid binaries, device nodes, links) must be out of reach of the host's other
    # users. A data_dir the bot does not own keeps its mode (the operator chose it).
    with contextlib.suppress(OSError):
        settings.data_dir.chmod(0o700)
    reporter = build_reporter(settings)
    store = SqlStore(settings.database.url, reporter)
    # serve, worker and the web app refuse a database that is not at the head revision
    # (``wercker-bot migrate`` brings it there); a new one is created at head.
    try:
        check_schema(store, settings.config_path)
    except SchemaError:
        store.engine.dispose()
        raise
    credentials = build_credentials(settings)
    pusher = build_pusher(settings, credentials)
    forge = forge if forge is not None else build_forge(settings)
    return Services(
        settings=settings,
        dispatcher=dispatcher_for(settings.database, store),
        log_archive=open_archive(settings.logs),
        store=store,
        pusher=pusher,
        engine_pusher=build_engine_pusher(settings, credentials),
        reporter=reporter,
        forge=forge,
        status_delivery=StatusDelivery(store, forge),
        runners=functools.partial(build_runners, settings, credentials),
    )
