"""The registry credentials the Docker Engine presents, by the daemonless pusher's rules.

The composition root hands ``registry_credentials`` to the docker runner (box pulls), whose
engine handle carries it to the engine pusher (pushes)."""

from __future__ import annotations

from collections.abc import Mapping

from bot.engine import CredentialResolver
from bot.images import RegistryAuth
from bot.pushers.registry.auth import credentials_for
from bot.pushers.registry.endpoint import resolve_endpoint
from bot.settings import RegistrySettings


def registry_credentials(registries: Mapping[str, RegistrySettings]) -> CredentialResolver:
    """ECR login tokens through boto3, Azure service principals, gcr.io ``_json_key``
    newlines, else the username/password as written. ``registries`` supplies per-host
    settings (the ECR endpoint URL)."""

    def resolve(registry: str, auth: RegistryAuth) -> tuple[str, str]:
        creds = credentials_for(resolve_endpoint(registry, "https", registries), auth)
        return creds.username, creds.password

    return resolve
