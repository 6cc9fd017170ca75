"""Step types. ``STEP_TYPES`` maps a wercker.yml step id to its implementation; the lint's
list of runnable steps is checked against it by a test. Every other step id is a registry
step: the plan resolves it to a step package, which ``PACKAGE_STEP`` runs."""

from __future__ import annotations

from steps.base import Step
from steps.docker_build import DockerBuildStep
from steps.docker_kill import DockerKillStep
from steps.docker_run import DockerRunStep
from steps.package import PackageStep
from steps.push import DockerPushStep, DockerScratchPushStep
from steps.script import ScriptStep

STEP_TYPES: dict[str, Step] = {
    "script": ScriptStep(),
    "internal/docker-push": DockerPushStep(),
    "internal/docker-scratch-push": DockerScratchPushStep(),
    "internal/docker-build": DockerBuildStep(),
    "internal/docker-run": DockerRunStep(),
    "internal/docker-kill": DockerKillStep(),
}

PACKAGE_STEP: Step = PackageStep()
"""Runs the step package ``StepContext.package`` (``steps/package.py``)."""
