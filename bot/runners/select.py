"""Chooses the runner for one build. The choice and the reason are the first lines of the
build log.

- ``docker``: the engine, or an error when it does not answer.
- ``local``: the local runner in a bubblewrap sandbox, or an error when there is none.
- ``auto``: docker when the engine answers a ping within a short timeout, else the
  sandboxed local runner, else an error: ``auto`` never runs steps unsandboxed.
- ``local-unsafe``: steps run on this host with no sandbox; every build says so.
"""

from __future__ import annotations

import os
from pathlib import Path

from bot.engine import CredentialResolver
from bot.errors import InfrastructureError
from bot.logs import Log
from bot.runners.base import Runner
from bot.runners.local import LocalRunner
from bot.runners.sandbox import Sandbox, check_expose, find_sandbox
from bot.settings import Settings

UNSAFE_WARNING = (
    "runner: local-unsafe — steps run on this host without a sandbox and can read everything "
    "the bot can (its config, store and credentials)"
)


def select_runner(
    settings: Settings, log: Log, credentials: CredentialResolver | None = None
) -> Runner:
    """The runner for one build, per ``settings.runner_kind``. Raises
    ``InfrastructureError`` when that kind cannot run here (no engine for ``docker``, no
    sandbox for ``local``, neither for ``auto``). ``credentials`` is how the docker runner
    resolves registry credentials (the caller passes
    ``bot.pushers.credentials.registry_credentials``: runners do not import pushers)."""
    kind = settings.runner_kind
    if kind == "local-unsafe":
        log.warn(UNSAFE_WARNING)
        return LocalRunner(None, settings.step_limits.max_file_mb)
    if kind == "local":
        sandbox, why = _sandbox(settings)
        if sandbox is None:
            raise InfrastructureError(_no_sandbox("runner kind is local", why))
        log.info(f"runner: local (configured; sandbox: {why})")
        return LocalRunner(sandbox, settings.step_limits.max_file_mb)
    from bot.runners.docker import DockerRunner, engine_available

    ok, reason = engine_available(settings.docker_host)
    # ``reason`` reads "runner: docker (engine … at …)" or "runner: local (no Docker Engine …)".
    if ok:
        log.info(f"{reason} [{'configured' if kind == 'docker' else 'auto'}]")
        return DockerRunner(
            settings.docker_host,
            network=settings.docker_network,
            credentials=credentials,
            registries=dict(settings.registries),
            memory_mb=settings.step_limits.memory_mb,
        )
    if kind == "docker":
        raise InfrastructureError(f"runner kind is docker but the engine is unavailable: {reason}")
    sandbox, why = _sandbox(settings)
    if sandbox is None:
        raise InfrastructureError(_no_sandbox("no Docker Engine answered", why))
    log.info(f"{reason} [auto; sandbox: {why}]")
    return LocalRunner(sandbox, settings.step_limits.max_file_mb)


def runner_for_plan(runner: Runner, settings: Settings, boxless: list[str], log: Log) -> Runner:
    """Under ``auto``, a plan whose pipelines have no ``box`` runs on the sandboxed local
    runner: the docker runner needs an image to start. Raises ``InfrastructureError`` when
    there is no sandbox. A configured ``docker`` keeps the engine (and the pipeline then
    fails with a clear wercker.yml error)."""
    if runner.kind == "docker" and settings.runner_kind == "auto" and boxless:
        names = ", ".join(boxless)
        sandbox, why = _sandbox(settings)
        if sandbox is None:
            raise InfrastructureError(_no_sandbox(f"pipeline(s) {names} have no box", why))
        log.info(f"runner: local (auto; no box in pipeline(s) {names}; sandbox: {why})")
        return LocalRunner(sandbox, settings.step_limits.max_file_mb)
    return runner


def _sandbox(settings: Settings) -> tuple[Sandbox | None, str]:
    """The probed sandbox with the configured extra paths, once they are known not to
    show steps the bot's data_dir, config, ssh keys or home; those are also hidden where
    they lie under what the sandbox shows anyway (``/usr``, the whitelisted ``/etc``)."""
    private = _private_files(settings)
    check_expose(settings.sandbox_expose, settings.data_dir, private)
    hide = (settings.data_dir, *private)
    return find_sandbox(settings.sandbox_expose, tuple(os.path.abspath(p) for p in hide))


def _private_files(settings: Settings) -> list[Path]:
    """What only the bot may read besides ``data_dir``: its home (and the venv or checkout
    that usually lives there), its config file and the repositories' ssh keys. Registry
    passwords are inline in the config; a registry's ``ca_file`` is public."""
    private = [Path(os.path.expanduser("~"))]
    if settings.config_path is not None:
        private.append(settings.config_path)
    keys = [r.ssh_key_file for r in settings.repos.values() if r.ssh_key_file]
    private += [Path(os.path.expanduser(k)) for k in keys]
    return private


def _no_sandbox(situation: str, why: str) -> str:
    return (
        f"{situation} and bubblewrap is unavailable ({why}): install bubblewrap "
        '(apt-get install bubblewrap) or set [runner] kind = "local-unsafe" to run steps on '
        "this host without a sandbox"
    )
