"""GitHub behind the Forge seam (``bot.forges.base``): pure functions and one HTTP client,
no Flask and no store.

- ``GitHubForge``: the ``Forge`` implementation, from the ``[github]`` settings.
- ``verify_signature``: ``X-Hub-Signature-256`` over the raw body.
- ``parse_delivery``: headers + raw body → ``Ping`` | ``Ignored`` | ``PushEvent``, or
  ``WebhookError(400/415)``.
- ``StatusClient.post``: one commit-status attempt → ``PostOutcome``; ``backoff`` for the outbox.
- ``truncate_description``: GitHub's 140-character description limit (``bot.reporter`` is
  its one caller on the status path).
"""

from bot.forges.github.delivery import (
    ZERO_SHA,
    Delivery,
    Ignored,
    Ping,
    PushEvent,
    decode_body,
    parse_delivery,
    strip_credentials,
)
from bot.forges.github.descriptions import truncate_description, utf16_len
from bot.forges.github.forge import GitHubForge
from bot.forges.github.headers import header
from bot.forges.github.outcome import Outcome, PostOutcome, backoff, classify, retry_after_seconds
from bot.forges.github.signature import verify_signature
from bot.forges.github.statuses import API_VERSION, STATES, StatusClient

__all__ = [
    "API_VERSION",
    "STATES",
    "ZERO_SHA",
    "Delivery",
    "GitHubForge",
    "Ignored",
    "Outcome",
    "Ping",
    "PostOutcome",
    "PushEvent",
    "StatusClient",
    "backoff",
    "classify",
    "decode_body",
    "header",
    "parse_delivery",
    "retry_after_seconds",
    "strip_credentials",
    "truncate_description",
    "utf16_len",
    "verify_signature",
]
