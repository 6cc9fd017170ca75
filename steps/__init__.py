"""Step types. ``STEP_TYPES`` maps a wercker.yml step id to its implementation."""

from __future__ import annotations

from steps.base import Step
from steps.push import DockerPushStep, DockerScratchPushStep
from steps.script import ScriptStep


def _docker_build() -> Step:
    from steps.docker_build import DockerBuildStep

    return DockerBuildStep()


class _Lazy:
    """Defers importing the docker-build step (and the docker SDK) until it is used."""

    def run(self, ctx):  # type: ignore[no-untyped-def]
        return _docker_build().run(ctx)


STEP_TYPES: dict[str, Step] = {
    "script": ScriptStep(),
    "internal/docker-push": DockerPushStep(),
    "internal/docker-scratch-push": DockerScratchPushStep(),
    "internal/docker-build": _Lazy(),
}
