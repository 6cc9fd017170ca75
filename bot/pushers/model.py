"""What a pusher is given and what it returns. ``ImageRef``, ``RegistryAuth`` and ``Scheme``
live in ``bot.images`` (the runners name them too); they are imported here for ``Target``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bot.images import ImageRef, RegistryAuth, Scheme


@dataclass(frozen=True)
class Target:
    """Where a push goes: one repository and one or more (already valid) tags.

    ``before_tag``, when set, is called by both pushers right before each tag is moved
    (``guard_tag``): the daemonless pusher just before that tag's manifest PUT, after every
    blob is uploaded; the engine pusher just before that tag's ``docker push`` (which
    uploads and stores the manifest in one call the bot cannot split). Whatever it raises
    ends the push there, that tag and the ones after it untouched. ``bot.dispatch.fence``
    sets it to the attempt's fence check, so a worker reaped while uploading moves no tag.
    It takes no part in equality."""

    registry: str
    repository: str
    tags: tuple[str, ...]
    scheme: Scheme = "https"
    auth: RegistryAuth = field(default_factory=RegistryAuth)
    before_tag: Callable[[], None] | None = field(default=None, compare=False, repr=False)

    def ref(self, tag: str) -> ImageRef:
        return ImageRef(self.registry, self.repository, tag, self.scheme, self.auth)

    def guard_tag(self) -> None:
        """Calls ``before_tag`` (nothing without one). Pushers call it right before moving
        each tag; it raises what ``before_tag`` raises."""
        if self.before_tag is not None:
            self.before_tag()


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
