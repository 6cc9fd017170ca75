"""What a pusher is given and what it returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

Scheme = Literal["https", "http", "auto"]
"""``auto``: HTTPS, falling back to plain HTTP; only for loopback hosts named without a scheme."""


@dataclass(frozen=True)
class RegistryAuth:
    """Credentials as written on a step or box (already expanded). All optional.

    Which one applies is decided by the registry auth resolver, never by a pusher:
    username/password (Basic or Bearer from the challenge), the ``aws_*`` set (ECR through
    boto3), or the ``azure_*`` set (Basic against the login server).
    """

    username: str = ""
    password: str = ""
    aws_access_key: str = ""
    aws_secret_key: str = ""
    aws_region: str = ""
    aws_registry_id: str = ""
    azure_client_id: str = ""
    azure_client_secret: str = ""
    azure_login_server: str = ""

    def secrets(self) -> list[str]:
        return [v for v in (self.password, self.aws_secret_key, self.azure_client_secret) if v]


@dataclass(frozen=True)
class ImageRef:
    """An image in a registry: ``registry`` is ``host[:port]`` (``registry-1.docker.io`` for
    Docker Hub), ``repository`` the lower-cased path (``library/busybox``), ``reference`` a tag
    or digest."""

    registry: str
    repository: str
    reference: str = "latest"
    scheme: Scheme = "https"
    auth: RegistryAuth = field(default_factory=RegistryAuth)

    def __str__(self) -> str:
        sep = "@" if self.reference.startswith("sha256:") else ":"
        return f"{self.registry}/{self.repository}{sep}{self.reference}"


@dataclass(frozen=True)
class Target:
    """Where a push goes: one repository and one or more (already valid) tags."""

    registry: str
    repository: str
    tags: tuple[str, ...]
    scheme: Scheme = "https"
    auth: RegistryAuth = field(default_factory=RegistryAuth)

    def ref(self, tag: str) -> ImageRef:
        return ImageRef(self.registry, self.repository, tag, self.scheme, self.auth)


@dataclass
class ImageConfig:
    """The runtime config of a pushed image (the OCI ``config`` object), from step options.

    ``None`` means "not set by the step" (keep the base image's value); ``ports`` are
    ``"8080/tcp"`` strings; ``env`` is applied on top of the base's ``Env``. How it goes
    over a base image's config, on both pushers: ``bot.pushers.image_config.merge_config``.
    """

    cmd: list[str] | None = None
    entrypoint: list[str] | None = None
    env: dict[str, str] = field(default_factory=dict)
    ports: list[str] = field(default_factory=list)
    volumes: list[str] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)
    user: str | None = None
    working_dir: str | None = None
    stop_signal: str | None = None
    author: str | None = None
    message: str | None = None


@dataclass(frozen=True)
class LayerDir:
    """A host directory whose contents become one layer, placed at ``image_path``."""

    host_path: Path
    image_path: str


@dataclass
class ImageSpec:
    """An image to assemble without a daemon: optional ``base`` image, then ``layers`` in
    order, then ``config`` applied on top of the base's config."""

    layers: list[LayerDir]
    config: ImageConfig
    base: ImageRef | None = None


@dataclass(frozen=True)
class PushResult:
    """A confirmed push: the manifest digest the registry returned for every tag."""

    registry: str
    repository: str
    tags: tuple[str, ...]
    digest: str
    size: int = 0

    def display(self) -> str:
        return f"{self.repository}:{','.join(self.tags)}"
