"""The Forge seam: what the bot needs from the place that hosts the repositories.

A forge does four things for the bot, each with the contract below:

- ``verify``: is this webhook delivery really from the forge (over the raw bytes)?
- ``parse``: what does a verified delivery say (``Ping`` | ``Ignored`` | ``PushEvent``)?
- ``post_status``: one attempt at one commit status, answered as a ``PostOutcome``.
- ``clone_token``: the credential git uses to fetch a repository from it.

plus ``can_post`` and ``backoff``, which the durable outbox (``bot.outbox``) needs to decide
whether to start delivering and how long to wait after an answer that named no time.

The web layer and the outbox see only this Protocol. ``GitHubForge``
(``bot.forges.github.forge``) is the implementation; ``bot.wiring`` builds it from the
settings, and a second forge (Gitea, GitLab) is a new implementation plus a line there.

What a forge never does: read the config itself, touch the store, or decide what a status
says. Descriptions arrive already masked and cut to 140 characters by ``bot.reporter``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from bot.forges.events import Delivery, Ignored, Ping, PushEvent
from bot.forges.outcome import Outcome, PostOutcome

__all__ = [
    "STATES",
    "Delivery",
    "Forge",
    "Ignored",
    "Outcome",
    "Ping",
    "PostOutcome",
    "PushEvent",
]

STATES = ("error", "failure", "pending", "success")
"""The commit-status states ``post_status`` takes (the reporter's state table maps build
results onto them; a forge with other words maps them in its own implementation)."""


class Forge(Protocol):
    """One forge, built once per process by the composition root and shared by the web app's
    threads (``verify``, ``parse``) and the outbox's one delivery thread (``post_status``)."""

    @property
    def signature_help(self) -> str:
        """One line for the 401 answer when ``verify`` says no: which header, which setting."""
        ...

    @property
    def can_post(self) -> bool:
        """Whether ``post_status`` can reach the forge at all (e.g. a token is configured).
        When False the outbox is not started: statuses wait in it, none is lost."""
        ...

    def verify(self, headers: Mapping[str, str], body: bytes) -> bool:
        """True only when the delivery is authentic: checked over ``body``, the raw request
        body exactly as received, before anything parses it. An unsigned delivery passes only
        where the settings say so explicitly, never as a fallback. Never raises for anything
        a client sent."""
        ...

    def parse(self, headers: Mapping[str, str], body: bytes, content_type: str) -> Delivery:
        """A verified delivery as ``Ping`` (answer 200), ``Ignored(reason)`` (202, build
        nothing) or ``PushEvent`` (a push to build; whether its repository is configured is
        the caller's call). Raises ``WebhookError(400 | 415, reason)`` when the delivery
        cannot be read; ``reason`` is one line naming the header or field at fault."""
        ...

    def post_status(
        self,
        repo_full_name: str,
        sha: str,
        state: str,
        context: str,
        description: str,
        target_url: str,
        *,
        attempt: int,
    ) -> PostOutcome:
        """Exactly one attempt at one commit status; never raises for anything the forge or
        the network does.

        ``state`` is one of ``STATES``; ``description`` is at most 140 characters (the
        reporter cuts it); an empty ``target_url`` is left out. ``attempt`` (1-based) counts
        the tries of this status. A ``RETRY`` names ``retry_at`` when the forge knows when to
        come back (a ``Retry-After``, a rate-limit reset, its own backoff for ``attempt``);
        without one the outbox waits ``backoff(attempt)``. ``FAILED`` means retrying cannot
        help (bad arguments fail so without a request). ``reason`` never holds a credential.
        """
        ...

    def backoff(self, attempt: int) -> float:
        """Seconds to wait after failed attempt ``attempt`` (1-based) when an outcome names
        no time of its own."""
        ...

    def clone_token(self, repo_full_name: str) -> str:
        """The token that lets git fetch ``repo_full_name`` (and the step sources hosted
        beside it) over HTTPS; empty when the forge holds none (a public repository, or an
        SSH deploy key). It goes to git through its environment, never into a URL or a log."""
        ...
