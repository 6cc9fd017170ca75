"""``internal/docker-kill`` (wercker-spec §4): stops and removes the container an earlier
``internal/docker-run`` of the same ``name`` started. A name that runs nothing is a warning,
not a failure (Wercker ignored the engine's "no such container"). No env sync."""

from __future__ import annotations

from steps.base import StepContext, StepOutcome
from steps.docker_run import container_name, container_session


class DockerKillStep:
    def run(self, ctx: StepContext) -> StepOutcome:
        session = container_session(ctx)
        name = container_name(ctx)
        if session.kill_container(name, ctx.log):
            return StepOutcome(message=f"removed {name}")
        ctx.log.warn(f"internal/docker-kill: no container named {name} was started")
        return StepOutcome(message=f"no container {name}")
