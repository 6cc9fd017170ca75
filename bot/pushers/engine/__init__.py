"""The engine pusher: images committed or built on a Docker Engine, pushed by it.

``EnginePusher`` (``pusher``) is the ``Pusher`` for the docker runner; ``model`` holds what
it pushes from (``BuiltImage``, ``EngineImage``; the ``BoxSnapshot`` and ``EngineHandle``
it shares with the runner live in ``bot.engine``); ``transfer`` tags and pushes; ``build``
runs ``docker build``.
"""

from __future__ import annotations

from bot.pushers.engine.build import build_image
from bot.pushers.engine.model import BuiltImage, EngineImage
from bot.pushers.engine.pusher import EnginePusher
from bot.pushers.engine.transfer import push_image, unhonoured_settings, warn_unhonoured_settings

__all__ = [
    "BuiltImage",
    "EngineImage",
    "EnginePusher",
    "build_image",
    "push_image",
    "unhonoured_settings",
    "warn_unhonoured_settings",
]
