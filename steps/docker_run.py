"""``internal/docker-run`` (wercker-spec §4): a detached container next to the box.

The container joins the box's network namespace (``bot.runners.docker.services``), so later
steps reach it by its ``name`` (a host name in the box) and by Docker link variables
(``<NAME>_PORT_<port>_TCP_ADDR`` …, from the image's exposed ports), as under Wercker. It
lives until an ``internal/docker-kill`` of the same name or the end of the pipeline, failed
or not. ``ports`` are not published (Wercker published them only with ``--expose-ports``);
``user`` was never applied by Wercker and is not here. Only the docker runner can run it.
"""

from __future__ import annotations

import re
from types import MappingProxyType

from bot.errors import StepConfigError
from bot.pushers.image_config import pairs, words
from bot.pushers.target import resolve_box
from bot.runners.base import ContainerSession, ServiceBox
from bot.wercker.expand import expand_options
from steps.base import StepContext, StepOutcome

NEEDS_ENGINE = (
    '{step} needs the docker runner ([runner] kind = "docker"); '
    "start the containers the build needs outside the bot on this runner"
)
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
# The options that say how to pull the image (resolve_box reads only these).
_PULL_OPTIONS = ("username", "password", "registry")


def container_name(ctx: StepContext) -> str:
    """The step-level ``name`` (not interpolated, as in Wercker): a valid host name."""
    name = ctx.step.options.get("name", "").strip()
    if not name:
        raise StepConfigError(f"{ctx.step.id}: name not set (the container's name)")
    if not _NAME.fullmatch(name):
        raise StepConfigError(
            f"{ctx.step.id}: name {name!r} must be letters, digits, '.', '_' or '-' "
            "(it becomes a host name in the box)"
        )
    return name


def container_session(ctx: StepContext) -> ContainerSession:
    session = ctx.session
    if not isinstance(session, ContainerSession):
        raise StepConfigError(NEEDS_ENGINE.format(step=ctx.step.id))
    return session


class DockerRunStep:
    """Starts the container; its link variables go to every later step's environment."""

    def run(self, ctx: StepContext) -> StepOutcome:
        session = container_session(ctx)
        name = container_name(ctx)
        options = expand_options(ctx.step, ctx.lookup, ctx.log)
        image_id = options.get("image", "").strip()
        if not image_id:
            raise StepConfigError("internal/docker-run: image not set")
        pull = {k: options[k] for k in _PULL_OPTIONS if options.get(k)}
        image = resolve_box(image_id, pull, registries=ctx.registries, log=ctx.log)
        ctx.log.add_secrets(image.auth.secrets())
        service = ServiceBox(
            name=name,
            image=image,
            env=MappingProxyType(pairs("env", options.get("env", ""))),
            cmd=_argv("cmd", options),
            entrypoint=_argv("entrypoint", options),
        )
        links = session.run_container(service, ctx.log)
        return StepOutcome(message=f"started {name} ({image})", env=links)


def _argv(option: str, options: dict[str, str]) -> tuple[str, ...] | None:
    text = options.get(option, "")
    return tuple(words(option, text)) if text.strip() else None
