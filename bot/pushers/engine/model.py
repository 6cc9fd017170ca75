"""What the engine pusher works with: a Docker Engine, and what it pushes from.

No docker import at run time: the runner seam (``bot.runners.base``) names ``BoxSnapshot``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bot.pushers.model import ImageConfig, RegistryAuth
from bot.settings import RegistrySettings

if TYPE_CHECKING:
    import docker

CredentialResolver = Callable[[str, RegistryAuth], tuple[str, str]]
"""``(registry host, auth) -> (username, password)`` for the engine to present; see
``registry_credentials`` (the docker runner's default) and ``basic_credentials``."""


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


@dataclass(frozen=True)
class BuiltImage:
    """An image on ``engine`` made by ``internal/docker-build`` (``EnginePusher.build``)."""

    engine: EngineHandle
    image_id: str


@dataclass(frozen=True)
class EngineImage:
    """What the engine pusher pushes: the box snapshot (committed with ``config``) or a
    built image (with ``config`` over its own config)."""

    origin: BoxSnapshot | BuiltImage
    config: ImageConfig
