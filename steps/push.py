"""``internal/docker-push`` and ``internal/docker-scratch-push``.

Both expand their options, resolve the target and the image config the same way; they differ
in what the image holds, and that chooses the pusher:

* ``docker-push`` with ``image-name``: the image an earlier ``internal/docker-build`` made,
  pushed by the engine pusher;
* ``docker-push`` on the docker runner: the box container (the session's ``snapshot()``),
  committed and pushed by the engine pusher;
* ``docker-push`` on the local runner: the box image's layers plus the source at
  ``/pipeline/source``, assembled by ``ctx.pusher`` (daemonless);
* ``docker-scratch-push``: the output dir (or the source dir when the output is empty) at
  ``/`` with no base, by ``ctx.pusher`` on both runners.

Either way the image config is ``merge_config`` over the base's (``bot.pushers.image_config``).
"""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path
from typing import TYPE_CHECKING

from bot.errors import StepConfigError
from bot.pushers.model import ImageConfig, ImageSpec, LayerDir, PushResult, Target
from bot.pushers.target import resolve_target
from bot.runners.base import snapshot_of
from bot.wercker.expand import expand_options
from steps.base import StepContext, StepOutcome
from steps.image_options import image_config

if TYPE_CHECKING:
    from bot.pushers.engine.model import EngineImage

SECRET_OPTIONS = ("password", "aws-secret-key", "azure-client-secret")


def _prepare(ctx: StepContext) -> tuple[dict[str, str], Target, ImageConfig]:
    options = expand_options(ctx.step, ctx.lookup, ctx.log)
    # A password may come from plain env or be written in wercker.yml: mask it all the same.
    ctx.log.add_secrets(options.get(key, "") for key in SECRET_OPTIONS)
    target = resolve_target(
        options,
        default_tag=ctx.facts.branch or ctx.facts.git_tag or "latest",
        registries=ctx.registries,
        log=ctx.log,
    )
    config = image_config(options, ctx.facts, ctx.secrets)
    return options, target, config


def _report(ctx: StepContext, result: PushResult, started: float) -> StepOutcome:
    took = time.monotonic() - started
    for tag in result.tags:
        ctx.log.info(f"Pushed {result.registry}/{result.repository}:{tag} ({result.digest})")
    return StepOutcome(
        message=f"Pushed {result.repository}:{result.tags[0]} ({result.digest[:19]}…) in "
        f"{took:.0f}s",
        images=[result],
    )


def _non_empty(path: Path, ctx: StepContext) -> bool:
    """Whether ``path`` is a real directory with something in it. A symlink is never
    followed (a step may have put one in place of its output dir): it counts as empty."""
    try:
        mode = os.lstat(path).st_mode
    except OSError:
        return False
    if stat.S_ISLNK(mode):
        ctx.log.warn(f"{path} is a symlink; it is not followed (taken as empty)")
        return False
    return stat.S_ISDIR(mode) and any(path.iterdir())


class DockerPushStep:
    def run(self, ctx: StepContext) -> StepOutcome:
        options, target, config = _prepare(ctx)
        started = time.monotonic()
        engine_image = _engine_image(ctx, options.get("image-name", ""), config)
        if engine_image is not None:
            result = ctx.engine_pusher.push(engine_image, target, ctx.log)
        else:
            source = ctx.session.collect(ctx.session.paths.source)
            if ctx.box is None:
                ctx.log.warn("no box in wercker.yml: the image holds only /pipeline/source")
            spec = ImageSpec(
                layers=[LayerDir(source, "/pipeline/source")], config=config, base=ctx.box
            )
            result = ctx.pusher.push(spec, target, ctx.log)
        return _report(ctx, result, started)


def _engine_image(ctx: StepContext, image_name: str, config: ImageConfig) -> EngineImage | None:
    """What the engine pusher pushes for this step: the image built as ``image_name``, or
    the box container; ``None`` when the session has no engine (the local runner)."""
    box = snapshot_of(ctx.session)
    if image_name and (box is None or image_name not in ctx.built_images):
        raise StepConfigError(
            f"image-name {image_name!r} was not built by an earlier internal/docker-build "
            "step in this pipeline"
        )
    if box is None:
        return None
    from bot.pushers.engine.model import BuiltImage, EngineImage

    if image_name:
        return EngineImage(BuiltImage(box.engine, ctx.built_images[image_name]), config)
    return EngineImage(box, config)


class DockerScratchPushStep:
    def run(self, ctx: StepContext) -> StepOutcome:
        _, target, config = _prepare(ctx)
        started = time.monotonic()
        # The output dir comes out of the session (get_archive on the docker runner) and the
        # image is assembled daemonless on both runners: a scratch image has no base layers to
        # share with the engine, and this keeps one code path and identical digests.
        output = ctx.session.collect(ctx.session.paths.output)
        # The layer builder refuses a root that is a symlink, so a source dir replaced by one
        # fails the push rather than pack what it points at.
        root = output if _non_empty(output, ctx) else ctx.session.collect(ctx.session.paths.source)
        ctx.log.info(f"scratch image from {'output' if root is output else 'source'} dir")
        spec = ImageSpec(layers=[LayerDir(root, "/")], config=config, base=None)
        return _report(ctx, ctx.pusher.push(spec, target, ctx.log), started)
