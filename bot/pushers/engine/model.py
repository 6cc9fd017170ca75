"""What the engine pusher pushes from: a box snapshot (``bot.engine.BoxSnapshot``) or an
image built on the session's engine."""

from __future__ import annotations

from dataclasses import dataclass

from bot.engine import BoxSnapshot, EngineHandle
from bot.pushers.model import ImageConfig


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
