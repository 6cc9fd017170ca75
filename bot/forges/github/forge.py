"""``GitHubForge``: the ``Forge`` seam (``bot.forges.base``) for github.com and GitHub
Enterprise Server, from the ``[github]`` settings.

It adds no policy of its own: ``verify_signature``, ``parse_delivery`` and ``StatusClient`` do
the work, and this class only holds the settings they need (the webhook secret and the
``insecure_skip_signature`` rule, the API URL and the token).
"""

from __future__ import annotations

from collections.abc import Mapping

from bot.forges.events import Delivery
from bot.forges.github.delivery import parse_delivery
from bot.forges.github.headers import header
from bot.forges.github.signature import verify_signature
from bot.forges.github.statuses import StatusClient
from bot.forges.outcome import PostOutcome, backoff
from bot.settings import GitHubSettings

SIGNATURE_HEADER = "X-Hub-Signature-256"


class GitHubForge:
    """GitHub behind the ``Forge`` Protocol. ``client`` is for tests (a client on another
    session or clock); by default one ``StatusClient`` is made from the settings. Statuses
    are posted from one thread (the outbox's), as GitHub asks for serial mutative requests."""

    def __init__(self, github: GitHubSettings, *, client: StatusClient | None = None) -> None:
        self._secret = github.webhook_secret
        # With a secret configured, deliveries are always verified, whatever the flag says.
        self._unsigned_ok = github.insecure_skip_signature and not github.webhook_secret
        self._token = github.token
        self._client = client or StatusClient.from_settings(github)

    def __repr__(self) -> str:
        return f"GitHubForge({self._client!r})"

    @property
    def signature_help(self) -> str:
        return f"missing or wrong {SIGNATURE_HEADER}; check the webhook secret"

    @property
    def can_post(self) -> bool:
        return bool(self._token)

    def verify(self, headers: Mapping[str, str], body: bytes) -> bool:
        """``X-Hub-Signature-256`` over the raw body with the webhook secret; an unsigned
        delivery passes only with ``insecure_skip_signature`` and no secret configured."""
        if self._unsigned_ok:
            return True
        return verify_signature(self._secret, body, header(headers, SIGNATURE_HEADER))

    def parse(self, headers: Mapping[str, str], body: bytes, content_type: str) -> Delivery:
        return parse_delivery(headers, body, content_type)

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
        return self._client.post(
            repo_full_name, sha, state, context, description, target_url, attempt=attempt
        )

    def backoff(self, attempt: int) -> float:
        return backoff(attempt)

    def clone_token(self, repo_full_name: str) -> str:
        """The configured token: one token serves every repository of the bot."""
        return self._token
