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
    if ok:
        log.info(f"runner: docker ({'configured' if kind == 'docker' else 'auto'}; {reason})")
        return DockerRunner(settings.docker_host, network=settings.docker_network)
    if kind == "docker":
        raise InfrastructureError(f"runner kind is docker but the engine is unavailable: {reason}")
    log.info(f"runner: local (auto; {reason})")
    return LocalRunner()
