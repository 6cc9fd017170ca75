"""How queued builds reach workers: the ``Dispatcher`` seam (``bot.dispatch.base``), chosen
by the store's URL (``dispatcher_for``).

- SQLite: ``EmbeddedDispatcher`` (``bot.dispatch.embedded``), threads polling the store.
- PostgreSQL: ``ProcrastinateDispatcher`` (``bot.dispatch.procrastinate``), ``drain(key)``
  jobs on procrastinate, workers on any number of hosts, a reaper for lost hosts.

Keys (``bot.dispatch.keys``) name one line of work, a repository's branch or tag; fencing
(``bot.dispatch.fence``) keeps a reaped worker from writing what the world sees.
"""

from __future__ import annotations

from bot.dispatch.base import AttemptFenced, Dispatcher, Fence, Handler
from bot.settings_store import StoreSettings
from bot.store.base import Store

__all__ = ["AttemptFenced", "Dispatcher", "Fence", "Handler", "dispatcher_for"]


def dispatcher_for(settings: StoreSettings, store: Store) -> Dispatcher:
    """The dispatcher for the store at ``settings.url``: procrastinate on PostgreSQL (its
    ``lost_after``/``reap_every``), the embedded one on SQLite."""
    if settings.is_postgres:
        # Imported only here: the embedded mode needs neither procrastinate nor psycopg.
        from bot.dispatch.procrastinate import ProcrastinateDispatcher

        return ProcrastinateDispatcher(
            store, settings.url, lost_after=settings.lost_after, reap_every=settings.reap_every
        )
    from bot.dispatch.embedded import EmbeddedDispatcher

    return EmbeddedDispatcher(store)
