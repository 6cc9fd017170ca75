"""Chooses the runner for one build: ``local``, ``docker``, or ``auto`` (docker when the
engine answers a ping within a short timeout, local otherwise). The choice and the reason are
the first lines of the build log."""

from __future__ import annotations

from bot.errors import InfrastructureError
from bot.logs import Log
from bot.runners.base import Runner
from bot.runners.local import LocalRunner
from bot.settings import Settings


def select_runner(settings: Settings, log: Log) -> Runner:
    kind = settings.runner_kind
    if kind == "local":
        log.info("runner: local (configured)")
        return LocalRunner()
    from bot.runners.docker import DockerRunner, engine_available

    ok, reason = engine_available(settings.docker_host)
    # ``reason`` reads "runner: docker (engine … at …)" or "runner: local (no Docker Engine …)".
    if ok:
        log.info(f"{reason} [{'configured' if kind == 'docker' else 'auto'}]")
        return DockerRunner(
            settings.docker_host,
            network=settings.docker_network,
            registries=dict(settings.registries),
        )
    if kind == "docker":
        raise InfrastructureError(f"runner kind is docker but the engine is unavailable: {reason}")
    log.info(f"{reason} [auto]")
    return LocalRunner()


def runner_for_plan(runner: Runner, settings: Settings, boxless: list[str], log: Log) -> Runner:
    """Under ``auto``, a plan whose pipelines have no ``box`` runs on the local runner: the
    docker runner needs an image to start. A configured ``docker`` keeps the engine (and the
    pipeline then fails with a clear wercker.yml error)."""
    if runner.kind == "docker" and settings.runner_kind == "auto" and boxless:
        log.info(f"runner: local (auto; no box in pipeline(s) {', '.join(boxless)})")
        return LocalRunner()
    return runner
