"""Step types. ``STEP_TYPES`` maps a wercker.yml step id to its implementation; the lint's
list of runnable steps is checked against it by a test."""

from __future__ import annotations

from steps.base import Step
from steps.docker_build import DockerBuildStep
from steps.push import DockerPushStep, DockerScratchPushStep
from steps.script import ScriptStep

STEP_TYPES: dict[str, Step] = {
    "script": ScriptStep(),
    "internal/docker-push": DockerPushStep(),
    "internal/docker-scratch-push": DockerScratchPushStep(),
    "internal/docker-build": DockerBuildStep(),
}
