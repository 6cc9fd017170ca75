"""``EnginePusher``: images made and pushed by a Docker Engine through the ``docker`` SDK.

Used on the docker runner. It pushes an ``EngineImage``: the box container of a session
(``DockerSession.snapshot()``), committed, or an image ``internal/docker-build`` made
(``EnginePusher.build``). The runtime config is ``merge_config`` (``bot.pushers.image_config``),
the same the daemonless pusher writes, so one wercker.yml gives the same image config on
both runners.

Facts this module is built on (reference/registry-push.md §4.4, checked against Engine 20.10):

* A commit merges the *container's* config into the image for what the commit config
  leaves out: every container env key, its ``Cmd`` when the new config has no ``Cmd`` and no
  ``Entrypoint``, its ``Entrypoint`` when the new one is null, its user, working dir, ports,
  volumes and labels. The box container is created with no env or labels of its own
  (values go to each exec), so all of that equals the box image's config, which
  ``merge_config`` started from; only the keepalive ``Cmd`` differs, and it is cleared.
* The config goes through ``conf`` rather than Dockerfile ``changes``: ``ENV``/``LABEL``
  changes are shell-word-parsed and ``$VAR``-expanded by the engine, which would rewrite a
  user's value. ``conf`` is taken literally and also carries ``StopSignal``, which ``changes``
  rejects.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from docker.errors import DockerException, ImageNotFound

from bot.engine import BoxSnapshot, CredentialResolver, EngineHandle
from bot.errors import InfrastructureError, PushError, StepConfigError, StepError
from bot.logs import Log
from bot.pushers.engine.build import build_image, dockerfile_context
from bot.pushers.engine.model import BuiltImage, EngineImage
from bot.pushers.engine.transfer import engine_text, push_image, remove_image
from bot.pushers.image_config import merge_config
from bot.pushers.model import ImageConfig, PushResult, Target


class EnginePusher:
    """``Pusher[EngineImage]`` on the engine the image is on (each source names its engine,
    so one pusher serves every docker session). The image it makes for a push is removed
    from the engine afterwards; the box layers and built images stay (a built image goes
    when its session closes). ``credentials`` is the process's one registry credential
    resolver (``bot.wiring.build_credentials``): what every push presents."""

    def __init__(self, credentials: CredentialResolver) -> None:
        self.credentials = credentials

    def push(self, source: EngineImage, target: Target, log: Log) -> PushResult:
        origin = source.origin
        if isinstance(origin, BoxSnapshot):
            log.info(f"committing the box container as {target.repository}")
            image_id = _commit_box(origin, source.config, log)
            try:
                return push_image(origin.engine, image_id, target, log, self.credentials)
            finally:
                remove_image(origin.engine, image_id)
        applied = _apply_to_built(origin, source.config, log)
        try:
            return push_image(origin.engine, applied, target, log, self.credentials)
        finally:
            if applied != origin.image_id:
                remove_image(origin.engine, applied)

    def build(
        self, box: BoxSnapshot, context_dir: Path, options: dict[str, Any], name: str, log: Log
    ) -> BuiltImage:
        """``internal/docker-build``: builds ``context_dir`` (``options`` are extra
        ``APIClient.build`` arguments) on the box's engine and keeps the image, tagged
        ``<box.built_prefix><name>`` so that pushing and untagging it cannot delete it,
        until the session closes."""
        image_id = build_image(box.engine, str(context_dir), options, log)
        try:
            box.engine.control.api.tag(
                image_id, f"{box.built_prefix}{_safe(name)}", "latest", force=True
            )
        except DockerException as err:
            raise InfrastructureError(f"cannot tag the built image: {err}") from None
        return BuiltImage(box.engine, image_id)

    def sweep(self) -> list[Path]:
        """Nothing on the host: box containers and built images of dead processes are the
        docker runner's to sweep (``bot.runners.docker.sweep``)."""
        return []


def _commit_box(box: BoxSnapshot, config: ImageConfig, log: Log) -> str:
    """Commits the box container with ``config`` over the box image's config; returns the
    new image's id."""
    conf = merge_config(box.base, config)
    try:
        committed = box.engine.control.api.commit(
            box.container_id, conf=conf, author=config.author, message=config.message
        )["Id"]
    except DockerException as err:
        raise PushError(f"committing the box container failed: {engine_text(err)}") from None
    try:
        return _clear_inherited_command(box.engine, committed, conf, config, log)
    except (DockerException, StepError) as err:
        remove_image(box.engine, committed)
        raise PushError(f"clearing the image's command failed: {err}") from None


def _apply_to_built(built: BuiltImage, config: ImageConfig, log: Log) -> str:
    """A new image with ``config`` over the built image's own config, through a created
    (never started) container; returns the built image itself when nothing changes."""
    api = built.engine.control.api
    try:
        base: dict[str, Any] = api.inspect_image(built.image_id)["Config"] or {}
        conf = merge_config(base, config)
        unchanged = conf == {k: v for k, v in base.items() if v is not None}
        if unchanged and config.author is None and config.message is None:
            return built.image_id
        needs_command = not (base.get("Cmd") or base.get("Entrypoint"))
        container = api.create_container(
            built.image_id, command=["true"] if needs_command else None
        )
        try:
            new_id = api.commit(
                container["Id"], conf=conf, author=config.author, message=config.message
            )["Id"]
        finally:
            api.remove_container(container["Id"], force=True)
        return _clear_inherited_command(built.engine, new_id, conf, config, log)
    except ImageNotFound:
        raise StepConfigError(
            f"the image built as {built.image_id[:19]} is gone from the engine"
        ) from None
    except DockerException as err:
        raise PushError(f"applying the image config failed: {engine_text(err)}") from None


def _clear_inherited_command(
    engine: EngineHandle, image_id: str, conf: dict[str, Any], config: ImageConfig, log: Log
) -> str:
    """When the image should have neither Cmd nor Entrypoint, the commit has inherited the
    container's command (the engine fills an empty Cmd from the container: the box's
    keepalive). A one-line build clears it: the builder's metadata commit does not merge."""
    if conf.get("Cmd") or conf.get("Entrypoint"):
        return image_id
    got = engine.control.api.inspect_image(image_id)["Config"] or {}
    if not (got.get("Cmd") or got.get("Entrypoint")):
        return image_id
    lines = [f"FROM {image_id}", "ENTRYPOINT []"]
    if config.author:
        lines.insert(1, "MAINTAINER " + " ".join(config.author.split()))
    new_id = build_image(engine, dockerfile_context("\n".join(lines) + "\n"), {}, log, quiet=True)
    remove_image(engine, image_id)
    return new_id


def _safe(name: str) -> str:
    """``image-name`` (from wercker.yml) as one path component of a local repository name:
    ASCII letters, digits, ``.``, ``_`` and ``-`` only, so a hostile name is never a path
    or a reference of its own."""
    cleaned = "".join(
        c if (c.isascii() and c.isalnum()) or c in "._-" else "-" for c in name.lower()
    )
    return cleaned.strip(".-")[:64] or "image"
