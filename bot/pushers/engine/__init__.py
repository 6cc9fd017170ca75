"""The engine pusher: images committed or built on a Docker Engine, pushed by it.

``EnginePusher`` (``pusher``) is the ``Pusher`` for the docker runner; ``model`` holds what
it pushes from (``BoxSnapshot``, ``BuiltImage``, ``EngineImage``) and the ``EngineHandle``;
``credentials`` names images and credentials the engine's way (also for box pulls);
``transfer`` tags and pushes; ``build`` runs ``docker build``.
"""

from __future__ import annotations

from bot.pushers.engine.build import build_image
from bot.pushers.engine.credentials import (
    auth_config,
    basic_credentials,
    engine_repository,
    registry_credentials,
)
from bot.pushers.engine.model import (
    BoxSnapshot,
    BuiltImage,
    CredentialResolver,
    EngineHandle,
    EngineImage,
)
from bot.pushers.engine.pusher import EnginePusher
from bot.pushers.engine.transfer import push_image, unhonoured_settings, warn_unhonoured_settings

__all__ = [
    "BoxSnapshot",
    "BuiltImage",
    "CredentialResolver",
    "EngineHandle",
    "EngineImage",
    "EnginePusher",
    "auth_config",
    "basic_credentials",
    "build_image",
    "engine_repository",
    "push_image",
    "registry_credentials",
    "unhonoured_settings",
    "warn_unhonoured_settings",
]
