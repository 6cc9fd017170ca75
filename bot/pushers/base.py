"""The pusher seam: what every pusher offers, whatever it pushes from.

Two implementations: ``DaemonlessPusher`` (``bot.pushers.daemonless``) assembles an
``ImageSpec`` (host directories as layers over an optional base image) and pushes it over the
registry HTTP API; ``EnginePusher`` (``bot.pushers.engine``) pushes an ``EngineImage`` (the
docker runner's box container, or an image ``internal/docker-build`` made) through a Docker
Engine. Both put the step's ``ImageConfig`` over the base's config with
``bot.pushers.image_config.merge_config``, so one wercker.yml gives the same image config on
both. ``steps/push.py`` chooses which one pushes.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from bot.logs import Log
from bot.pushers.model import PushResult, Target

if TYPE_CHECKING:  # the engine package loads the docker SDK; its types are enough here
    from bot.engine import BoxSnapshot
    from bot.pushers.engine.model import BuiltImage, EngineImage  # noqa: F401 (a base's string)

S_contra = TypeVar("S_contra", contravariant=True)


class Pusher(Protocol[S_contra]):
    """Pushes ``source`` (what the image is made of, with its ``ImageConfig``) to every tag
    of ``target``.

    ``push`` returns only once the registry has confirmed the manifest digest. It raises
    ``RegistryAuthError`` when credentials are refused or the push is denied,
    ``RegistryUnavailable`` when the registry cannot be reached after retries, and
    ``RegistryError``/``PushError`` otherwise, each with a message a user can act on and
    with no credential in it. Progress goes to ``log``.

    ``sweep`` removes what pushes of crashed processes left on this host (layer spools) and
    returns it; a pusher that leaves nothing behind returns ``[]``. Safe to call any time.
    """

    def push(self, source: S_contra, target: Target, log: Log) -> PushResult: ...

    def sweep(self) -> list[Path]: ...


class EngineImagePusher(Pusher["EngineImage"], Protocol):
    """The engine pusher (``bot.pushers.engine.EnginePusher``): a ``Pusher[EngineImage]``
    that also builds images next to the box container (``internal/docker-build``).

    ``build`` builds ``context_dir`` (``options`` are extra ``APIClient.build`` arguments)
    on the box's engine and keeps the image, tagged ``<box.built_prefix><name>``, until the
    session closes; it raises ``StepError`` for a failed build and ``InfrastructureError``
    when the engine cannot keep it."""

    def build(
        self, box: BoxSnapshot, context_dir: Path, options: dict[str, Any], name: str, log: Log
    ) -> BuiltImage: ...
