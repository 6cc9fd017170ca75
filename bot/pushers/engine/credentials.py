"""Names and credentials as the Docker Engine wants them, for box pulls and pushes."""

from __future__ import annotations

from collections.abc import Mapping

from bot.errors import StepConfigError
from bot.pushers.engine.model import CredentialResolver
from bot.pushers.model import RegistryAuth
from bot.pushers.target import DOCKER_HUB_ALIASES
from bot.settings import RegistrySettings


def registry_credentials(registries: Mapping[str, RegistrySettings]) -> CredentialResolver:
    """The resolver the daemonless pusher's rules give (``credentials_for``): ECR login
    tokens through boto3, Azure service principals, gcr.io ``_json_key`` newlines, else the
    username/password as written. ``registries`` supplies per-host settings (the ECR
    endpoint URL)."""

    def resolve(registry: str, auth: RegistryAuth) -> tuple[str, str]:
        from bot.pushers.registry.auth import credentials_for
        from bot.pushers.registry.endpoint import resolve_endpoint

        creds = credentials_for(resolve_endpoint(registry, "https", registries), auth)
        return creds.username, creds.password

    return resolve


def basic_credentials(registry: str, auth: RegistryAuth) -> tuple[str, str]:
    """Username/password as written, or an Azure service principal. ECR needs a resolver
    that can fetch a login token; without one the push fails with a clear message."""
    if auth.azure_client_id or auth.azure_client_secret:
        return auth.azure_client_id, auth.azure_client_secret
    if auth.aws_access_key or auth.aws_secret_key or auth.aws_region or auth.aws_registry_id:
        raise StepConfigError(
            f"ECR credentials for {registry} need the ECR login resolver; "
            "it is not configured for the docker runner"
        )
    return auth.username, auth.password


def auth_config(
    registry: str, auth: RegistryAuth, resolver: CredentialResolver | None = None
) -> dict[str, str]:
    """The ``auth_config`` for pull and push: ``{}`` when anonymous, never ``None``."""
    username, password = (resolver or basic_credentials)(registry, auth)
    if not (username or password):
        return {}
    config = {"username": username, "password": password}
    if registry not in DOCKER_HUB_ALIASES:
        config["serveraddress"] = registry
    return config


def engine_repository(registry: str, repository: str) -> str:
    """The name the engine pushes to: Docker Hub names carry no host (the engine adds
    ``docker.io``); any other registry is ``host[:port]/repository``."""
    if registry.lower() in DOCKER_HUB_ALIASES:
        return repository
    return f"{registry}/{repository}"
