"""What a pusher is given and what it returns. ``ImageRef``, ``RegistryAuth`` and ``Scheme``
live in ``bot.images`` (the runners name them too); they are imported here for ``Target``."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from bot.images import ImageRef, RegistryAuth, Scheme


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
