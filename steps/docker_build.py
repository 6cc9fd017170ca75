"""``internal/docker-build`` (wercker-spec §4): ``docker build`` of a Dockerfile in the source.

The engine pusher builds it next to the box container (``ctx.engine_pusher.build`` on the
session's ``snapshot()``) and the image id is kept under the step's ``image-name``
(``ctx.built_images``), so a later ``internal/docker-push`` with ``image-name:`` pushes it
instead of committing the box. Only the docker runner can build: the local runner has no
engine.
"""

from __future__ import annotations

import os
import posixpath
import stat
from pathlib import Path
from typing import Any

from bot.errors import StepConfigError
from bot.pushers.image_config import pairs as _pairs
from bot.pushers.image_config import words as _words
from bot.runners.base import snapshot_of
from bot.wercker.expand import expand_options
from steps.base import StepContext, StepOutcome

NEEDS_ENGINE = 'internal/docker-build needs a Docker Engine ([runner] kind = "docker")'
_TRUE = frozenset({"1", "t", "T", "true", "TRUE", "True"})  # Go's strconv.ParseBool


class DockerBuildStep:
    def run(self, ctx: StepContext) -> StepOutcome:
        session = ctx.session
        box = snapshot_of(session)
        if box is None:
            raise StepConfigError(NEEDS_ENGINE)
        options = expand_options(ctx.step, ctx.lookup, ctx.log)
        image_name = options.get("image-name", "").strip()
        if not image_name:
            raise StepConfigError("internal/docker-build: image-name not set")
        if options.get("registry-auth-config"):
            ctx.log.warn(
                "internal/docker-build: registry-auth-config is not supported; base images "
                "are pulled with the engine's own credentials"
            )
        context = _context_path(session.paths.source, options.get("context", ""))
        # The context is copied out of the box container rather than taken from the host
        # checkout: earlier steps ran in the container and their results (a compiled binary
        # the Dockerfile COPYs, generated files) exist only there, as under Wercker.
        context_dir = session.collect(context)
        _check_dockerignore(context_dir)
        build_options: dict[str, Any] = {
            "buildargs": _pairs("build-args", options.get("build-args", "")),
            "labels": _pairs("labels", options.get("labels", "")),
            "nocache": options.get("no-cache", "") in _TRUE,
            "quiet": options.get("q", "") in _TRUE,
            "pull": False,  # the engine still pulls a FROM image it lacks
        }
        if options.get("dockerfile"):
            build_options["dockerfile"] = _dockerfile(options["dockerfile"])
        if options.get("squash", "") in _TRUE:
            build_options["squash"] = True
        hosts = _extra_hosts(options.get("extra-hosts", ""))
        if hosts:
            build_options["extra_hosts"] = hosts
        ctx.log.info(f"building {image_name} from {context}")
        built = ctx.engine_pusher.build(box, context_dir, build_options, image_name, ctx.log)
        ctx.built_images[image_name] = built.image_id
        return StepOutcome(message=f"Built {image_name} ({built.image_id[:19]})")


def _context_path(source: str, context: str) -> str:
    """The guest path of the build context; it must stay inside the source dir."""
    path = posixpath.normpath(posixpath.join(source, context.strip()))
    if path != source and not path.startswith(source.rstrip("/") + "/"):
        raise StepConfigError(f"internal/docker-build: context {context!r} leaves the source dir")
    return path


def _dockerfile(value: str) -> str:
    """The ``dockerfile`` option, which must name a file inside the context. docker-py
    reads a Dockerfile outside the context itself, on the bot's host, and sends it to the
    engine: ``dockerfile: /etc/shadow`` would publish a host file in the build log."""
    name = value.strip()
    path = posixpath.normpath(name)
    if posixpath.isabs(path) or path == ".." or path.startswith("../"):
        raise StepConfigError(
            f"internal/docker-build: dockerfile {value!r} must be a path inside the context"
        )
    return path


def _check_dockerignore(context_dir: Path) -> None:
    """docker-py opens the context's ``.dockerignore`` on the bot's host and follows links:
    it must be a regular file, if there is one."""
    try:
        mode = os.lstat(context_dir / ".dockerignore").st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISREG(mode):
        raise StepConfigError(
            "internal/docker-build: .dockerignore in the context is a symlink or not a file; "
            "make it a regular file"
        )


def _extra_hosts(value: str) -> dict[str, str]:
    hosts: dict[str, str] = {}
    for word in _words("extra-hosts", value):
        host, sep, ip = word.partition(":")
        if not sep or not host or not ip:
            raise StepConfigError(f"option 'extra-hosts': {word!r} is not of the form host:ip")
        hosts[host] = ip
    return hosts
