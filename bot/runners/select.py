"""Chooses the runner for one build. The choice and the reason are the first lines of the
build log.

- ``docker``: the engine, or an error when it does not answer.
- ``local``: the local runner in a bubblewrap sandbox, or an error when there is none.
- ``auto``: docker when the engine answers a ping within a short timeout and every planned
  pipeline has a box, else the sandboxed local runner, else an error: ``auto`` never runs
  steps unsandboxed.
- ``local-unsafe``: steps run on this host with no sandbox; every build says so.

``RunnerChooser`` does it in two moves, so the plan can be compiled between them: ``kind_for``
decides the kind a plan needs (the plan's linting depends on it), ``runner`` builds that
runner. Each probe of the host (engine ping, bubblewrap) runs at most once per chooser.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
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

EngineProbe = Callable[[], tuple[bool, str]]
"""Whether the Docker Engine answers, and the log line saying so (``engine_available``)."""
SandboxProbe = Callable[[], tuple[Sandbox | None, str]]
"""The usable sandbox or ``None``, and a few words on why (``find_sandbox``)."""


class RunnerChooser:
    """The runner of one attempt, per ``settings.runner_kind``: ``kind_for(boxless, log)``
    then ``runner(kind)``.

    ``credentials`` is how the docker runner resolves registry credentials (the composition
    root passes its one ``bot.pushers.credentials.RegistryCredentials``: runners do not import
    pushers). ``engine_probe`` and ``sandbox_probe`` replace the real probes (tests); each
    probe runs at most once, and only when the configured kind needs it."""

    def __init__(
        self,
        settings: Settings,
        credentials: CredentialResolver | None = None,
        *,
        engine_probe: EngineProbe | None = None,
        sandbox_probe: SandboxProbe | None = None,
    ) -> None:
        self.settings = settings
        self.credentials = credentials
        self._engine_probe = engine_probe or (lambda: _engine_available(settings))
        self._sandbox_probe = sandbox_probe or (lambda: _sandbox(settings))
        self._engine: tuple[bool, str] | None = None
        self._sandbox: tuple[Sandbox | None, str] | None = None

    def engine(self) -> tuple[bool, str]:
        if self._engine is None:
            self._engine = self._engine_probe()
        return self._engine

    def sandbox(self) -> tuple[Sandbox | None, str]:
        if self._sandbox is None:
            self._sandbox = self._sandbox_probe()
        return self._sandbox

    def kind_for(self, boxless: Sequence[str], log: Log) -> str:
        """The runner kind for a plan whose pipelines ``boxless`` have no box, logged with
        its reason. Under ``auto`` such a plan runs on the sandboxed local runner: the docker
        runner needs an image to start. A configured ``docker`` keeps the engine (the
        pipeline then fails with a clear wercker.yml error). Raises ``InfrastructureError``
        when that kind cannot run here."""
        kind = self.settings.runner_kind
        if kind == "local-unsafe":
            log.warn(UNSAFE_WARNING)
            return kind
        if kind == "local":
            why = self._need_sandbox("runner kind is local")
            log.info(f"runner: local (configured; sandbox: {why})")
            return kind
        ok, reason = self.engine()
        # ``reason`` reads "runner: docker (engine … at …)" or "runner: local (no Docker Engine …)".
        if ok and kind == "auto" and boxless:
            names = ", ".join(boxless)
            why = self._need_sandbox(f"pipeline(s) {names} have no box")
            log.info(f"runner: local (auto; no box in pipeline(s) {names}; sandbox: {why})")
            return "local"
        if ok:
            log.info(f"{reason} [{'configured' if kind == 'docker' else 'auto'}]")
            return "docker"
        if kind == "docker":
            raise InfrastructureError(
                f"runner kind is docker but the engine is unavailable: {reason}"
            )
        why = self._need_sandbox("no Docker Engine answered")
        log.info(f"{reason} [auto; sandbox: {why}]")
        return "local"

    def runner(self, kind: str) -> Runner:
        """The runner of ``kind`` (as ``kind_for`` returned it), built once per attempt."""
        limits = self.settings.step_limits
        if kind == "local-unsafe":
            return LocalRunner(None, limits.max_file_mb)
        if kind == "local":
            sandbox, why = self.sandbox()
            if sandbox is None:  # kind_for said local: only a caller skipping it gets here
                raise InfrastructureError(_no_sandbox("runner kind is local", why))
            return LocalRunner(sandbox, limits.max_file_mb)
        if kind != "docker":
            raise InfrastructureError(f"unknown runner kind {kind!r}")
        from bot.runners.docker import DockerRunner

        return DockerRunner(
            self.settings.docker_host,
            network=self.settings.docker_network,
            credentials=self.credentials,
            registries=dict(self.settings.registries),
            memory_mb=limits.memory_mb,
        )

    def _need_sandbox(self, situation: str) -> str:
        sandbox, why = self.sandbox()
        if sandbox is None:
            raise InfrastructureError(_no_sandbox(situation, why))
        return why


def select_runner(
    settings: Settings, log: Log, credentials: CredentialResolver | None = None
) -> Runner:
    """The runner for steps that all have a box (no plan to ask), per
    ``settings.runner_kind``: ``RunnerChooser.kind_for`` then ``runner``. Raises
    ``InfrastructureError`` when that kind cannot run here."""
    chooser = RunnerChooser(settings, credentials)
    return chooser.runner(chooser.kind_for((), log))


def _engine_available(settings: Settings) -> tuple[bool, str]:
    from bot.runners.docker import engine_available

    return engine_available(settings.docker_host)


def check_runner_settings(settings: Settings) -> None:
    """Raises ``ConfigError`` when ``[runner] sandbox_expose`` would show steps what only the
    bot may read (``check_expose``). The composition root calls it at startup, so a bad
    config stops ``serve``/``worker`` before any build; every sandbox made checks again."""
    check_expose(settings.sandbox_expose, settings.data_dir, _private_files(settings))


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
