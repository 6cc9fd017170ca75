"""A Docker Engine as the docker runner and the engine pusher share it: the handle on it,
the box snapshot a session offers for commits and builds, and names and credentials the
way the engine wants them (box pulls and pushes).

Neutral ground between ``bot.runners`` and ``bot.pushers``; no docker import at run time.
How registry credentials are resolved is not decided here: the composition root builds one
``CredentialResolver`` (``bot.pushers.credentials.RegistryCredentials``) and hands the same
instance to the runner (box pulls and services, through the engine handle), the engine
pusher and the daemonless pusher.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from bot.errors import StepConfigError
from bot.imageref import DOCKER_HUB_ALIASES
from bot.images import RegistryAuth
from bot.settings import RegistrySettings

if TYPE_CHECKING:
    import docker

# The registry's error codes reach us through the engine as text only: the distribution
# errcode's own format, ``<code in lower case, words apart>: <message>`` (``manifest unknown:
# manifest unknown``, ``denied: requested access to the resource is denied``). Box pulls and
# engine pushes both read them here, and nowhere else.
_CODE = re.compile(r"(?:^|:\s)([a-z][a-z ]{2,30}):\s")
_KNOWN_CODES = frozenset(
    {
        "DENIED",
        "UNAUTHORIZED",
        "NAME_UNKNOWN",
        "NAME_INVALID",
        "MANIFEST_INVALID",
        "MANIFEST_UNKNOWN",
        "MANIFEST_BLOB_UNKNOWN",
        "BLOB_UNKNOWN",
        "BLOB_UPLOAD_INVALID",
        "BLOB_UPLOAD_UNKNOWN",
        "TAG_INVALID",
        "TOOMANYREQUESTS",
        "UNSUPPORTED",
    }
)
# The engine's own words when it had no credentials for a registry that wants some.
_NO_CREDENTIALS = "no basic auth credentials"

Say = Callable[[str], None]
"""Writes one warning line (the build log of the pull or push)."""


class CredentialResolver(Protocol):
    """What to present to a registry: ``(registry host as images name it, the auth the
    config or the step gave) -> (username, password)``, both empty for anonymous access.
    ``say`` announces slow work on the way (the retries of an ECR login). Raises a
    ``RegistryError`` (or ``StepConfigError``) when no credentials can be had.

    One resolver serves box pulls, the engine pusher and the daemonless pusher:
    ``bot.pushers.credentials.RegistryCredentials``; ``basic_credentials`` is the fallback
    for an engine handle built without one."""

    def __call__(
        self, registry: str, auth: RegistryAuth, say: Say | None = None
    ) -> tuple[str, str]: ...


@dataclass
class EngineHandle:
    """A docker session's engine: a ``control`` client (with a read timeout), a ``stream``
    client (without: pushes and builds can be silent for a long time), the network builds
    run on, how credentials are resolved, and the bot's ``[registries]`` settings (ECR
    repository creation; the TLS/mirror settings the engine cannot apply are warned about)."""

    control: docker.DockerClient
    stream: docker.DockerClient
    network: str = "none"
    credentials: CredentialResolver | None = None
    registries: Mapping[str, RegistrySettings] = field(default_factory=dict)


@dataclass(frozen=True)
class BoxSnapshot:
    """The box container of a docker session as it stands, offered by
    ``DockerSession.snapshot()``: the engine it runs on, its id, the box image's runtime
    config (``base``: what the step's ``ImageConfig`` goes over; the container's own config
    holds the keepalive command) and ``built_prefix``, the repository prefix of the images
    built in the session (``wercker-bot-build/<id12>-``), which the session removes when it
    closes."""

    engine: EngineHandle
    container_id: str
    base: Mapping[str, Any]
    built_prefix: str


def basic_credentials(
    registry: str, auth: RegistryAuth, say: Say | None = None
) -> tuple[str, str]:
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


def engine_codes(message: str) -> tuple[str, ...]:
    """The registry's error codes in an engine message, in order, once each (``manifest
    unknown: …`` → ``MANIFEST_UNKNOWN``); the engine's own ``no basic auth credentials`` (it
    had none to send to a registry that asked) counts as ``UNAUTHORIZED``."""
    found = (m.group(1).strip().upper().replace(" ", "_") for m in _CODE.finditer(message))
    codes = [code for code in found if code in _KNOWN_CODES]
    if _NO_CREDENTIALS in message.lower():
        codes.append("UNAUTHORIZED")
    return tuple(dict.fromkeys(codes))


def engine_repository(registry: str, repository: str) -> str:
    """The name the engine pushes to: Docker Hub names carry no host (the engine adds
    ``docker.io``); any other registry is ``host[:port]/repository``."""
    if registry.lower() in DOCKER_HUB_ALIASES:
        return repository
    return f"{registry}/{repository}"
