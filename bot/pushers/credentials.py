"""The one registry credential resolver: box pulls, the engine pusher and the daemonless
pusher all present what it resolves.

The composition root (``bot.wiring.build_credentials``) builds one ``RegistryCredentials``
from the settings and hands the same object to the docker runner (box pulls; its engine
handle carries it to the engine pusher) and to the ``DaemonlessPusher`` (its
``RegistryClient``s)."""

from __future__ import annotations

from collections.abc import Mapping

from bot.engine import CredentialResolver, Say
from bot.images import RegistryAuth
from bot.pushers.registry.auth import credentials_for
from bot.pushers.registry.endpoint import resolve_endpoint
from bot.settings import RegistrySettings


class RegistryCredentials:
    """``CredentialResolver`` by the bot's rules: ECR login tokens through boto3, Azure
    service principals, gcr.io ``_json_key`` newlines, else the username/password as
    written. ``registries`` supplies per-host settings (the ECR endpoint URL). Holds no
    state between calls, so one instance is safe to share between threads."""

    def __init__(self, registries: Mapping[str, RegistrySettings]) -> None:
        self.registries = registries

    def __call__(
        self, registry: str, auth: RegistryAuth, say: Say | None = None
    ) -> tuple[str, str]:
        endpoint = resolve_endpoint(registry, "https", self.registries)
        creds = credentials_for(endpoint, auth, say)
        return creds.username, creds.password


def registry_credentials(registries: Mapping[str, RegistrySettings]) -> CredentialResolver:
    """A ``RegistryCredentials`` for ``registries`` (tools and tests; the bot builds its
    one resolver in ``bot.wiring``)."""
    return RegistryCredentials(registries)
