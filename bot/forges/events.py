"""What a forge's webhook delivery turns into, whichever forge sent it.

``Forge.parse`` has exactly four outcomes: ``Ping``, ``Ignored``, ``PushEvent``, or a
``WebhookError(400 | 415)`` raised (``bot.forges.base``).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Ping:
    """The hook was set up: answer 200, build nothing. ``zen`` is the forge's greeting (GitHub's
    random proverb), handy for a log line."""

    delivery_id: str
    hook_id: str
    zen: str = ""


@dataclass(frozen=True)
class Ignored:
    """A readable delivery that builds nothing; ``reason`` goes to ``{"ignored": reason}``.

    ``repo_full_name`` is filled when known, for logging only.
    """

    reason: str
    repo_full_name: str = ""


@dataclass(frozen=True)
class PushEvent:
    """A push to build.

    ``sha`` is the commit to check out and to post statuses on (for a tag push, the commit
    the tag points to, never an annotated tag object). Exactly one of ``branch``/``tag`` is
    set. ``html_url`` never carries credentials (it feeds ``org.opencontainers.image.source``).
    The payload's clone URLs are deliberately absent: only the config decides where to clone
    from, otherwise a signed payload could point the bot at an internal host.
    """

    delivery_id: str
    hook_id: str
    repo_full_name: str
    ref: str
    branch: str
    tag: str
    sha: str
    before: str
    head_message: str
    pusher: str
    html_url: str
    private: bool
    # Ordering evidence only (behaviour §3), so not part of a push's identity.
    commits: tuple[str, ...] = field(default=(), compare=False)
    """Ids of the payload's commits (each reachable from ``sha``), as many as the forge
    lists (GitHub: at most 2048)."""
    forced: bool = field(default=False, compare=False)
    """A force push: ``before`` is then not an ancestor of ``sha``."""

    @property
    def dedupe_key(self) -> tuple[str, str]:
        """A forge reuses the delivery id on redelivery, and one id may span hooks
        (github-facts §1.7), so a delivery is identified by (hook id, delivery id)."""
        return (self.hook_id, self.delivery_id)


Delivery = Ping | Ignored | PushEvent
