"""Containers next to the box: wercker.yml ``services:`` and ``internal/docker-run``.

How the box reaches them. Every container of a pipeline that has services shares ONE network
namespace, held by a small keep-alive container made from the box image (the "holder"); the
services and the box join it (``network_mode: container:<holder>``). Why a shared namespace
and not a network with aliases: the runner's network is ``none`` unless configured (builds
are hostile; the test engines run with ``--bridge=none``), and a ``none`` container cannot
reach another one at all. A shared namespace works on every engine and every network mode,
gives nothing more than the box already had (the holder is on ``[runner] network``, exactly
where the box would be), and makes each service reachable at ``127.0.0.1:<port>``. Why a
holder and not the first service or the box: a service that exits, or a step that stops the
box (``kill 1``; the box is restarted for after-steps), would otherwise take the namespace of
everything else with it. The price: two containers listening on the same port conflict, as
two processes on one host would.

The box sees each container as Wercker made it visible: Docker link variables
(``<NAME>_PORT_<port>_TCP_ADDR`` …, ``link_env``) in every step's env, and its name in the
box's ``/etc/hosts`` (pointing at 127.0.0.1). Without services, ``internal/docker-run``
containers join the box's own namespace.

Every container here is named like a box (``sweep.box_name``), so the sweep of a dead bot
removes it too; ``ServiceSet.close`` removes them after the pipeline. Their logs are never
streamed: a service that stops right after it starts shows a short tail of its output.
"""

from __future__ import annotations

import contextlib
import re
import time
from typing import Any

from docker.errors import DockerException

from bot.engine import EngineHandle
from bot.errors import InfrastructureError
from bot.logs import Log
from bot.runners.base import ServiceBox
from bot.runners.docker.sweep import box_name

LOOPBACK = "127.0.0.1"
HOLDER_PIDS = 16
HOLDER_MEMORY = "32m"
START_CHECK_SECONDS = 1.0
"""How long a fresh container must stay up to count as started."""
TAIL_LINES = 20
TAIL_CHARS = 2000
MAX_CONTAINERS = 32
"""At most this many containers next to one box (services plus docker-run)."""


def alias_of(repository: str) -> str:
    """Wercker's default service name: the last path part of the repository."""
    return repository.rstrip("/").rsplit("/", 1)[-1]


def link_env(name: str, ports: list[tuple[int, str]], addr: str = LOOPBACK) -> dict[str, str]:
    """Docker link variables for ``name`` listening on ``ports`` (``(port, proto)``) at
    ``addr``: ``<NAME>_PORT_<p>_<PROTO>{,_ADDR,_PORT,_PROTO}`` per port and ``<NAME>_PORT``
    for the lowest one, ``<NAME>`` upper-cased with other characters as ``_``."""
    prefix = re.sub(r"[^A-Z0-9_]", "_", name.upper())
    env: dict[str, str] = {f"{prefix}_NAME": f"/box/{name}"}
    for port, proto in sorted(ports):
        base = f"{prefix}_PORT_{port}_{proto.upper()}"
        env[base] = f"{proto}://{addr}:{port}"
        env[f"{base}_ADDR"] = addr
        env[f"{base}_PORT"] = str(port)
        env[f"{base}_PROTO"] = proto
    if ports:
        port, proto = min(ports)
        env[f"{prefix}_PORT"] = f"{proto}://{addr}:{port}"
    return env


def exposed_ports(config: dict[str, Any]) -> list[tuple[int, str]]:
    """The image config's ``ExposedPorts`` (``{"8080/tcp": {}}``) as ``(port, proto)``."""
    out: list[tuple[int, str]] = []
    for key in config.get("ExposedPorts") or {}:
        port, _, proto = str(key).partition("/")
        if port.isdigit():
            out.append((int(port), proto or "tcp"))
    return sorted(out)


class ServiceSet:
    """The containers next to one box. ``netns`` is the container whose network namespace
    they join (the holder, or the box); images are pulled by ``bot.runners.docker.pulls``.
    ``close`` removes them all (the holder last); idempotent,
    never raises."""

    def __init__(self, engine: EngineHandle, pids_limit: int, memory_mb: int) -> None:
        self.engine = engine
        self.pids_limit = pids_limit
        self.memory_mb = memory_mb
        self.netns: str | None = None
        self.holder: str | None = None
        self.running: dict[str, str] = {}  # name → container id
        self._closed = False

    def start_holder(self, image: str, command: list[str], entrypoint: list[str] | None) -> str:
        """Creates and starts the namespace holder from the box ``image``; returns its id."""
        api = self.engine.control.api
        host_config = api.create_host_config(
            network_mode=self.engine.network, pids_limit=HOLDER_PIDS, mem_limit=HOLDER_MEMORY
        )
        created = api.create_container(
            image, command=command, entrypoint=entrypoint, host_config=host_config, name=box_name()
        )
        self.holder = self.netns = str(created["Id"])
        api.start(self.holder)
        return self.holder

    def start(self, service: ServiceBox, image: str, log: Log) -> dict[str, str]:
        """Starts ``service`` from the pulled ``image`` in the shared namespace; returns its
        link variables. Raises ``InfrastructureError`` (with a short tail of its output)
        when it stops right away, or when the engine refuses it."""
        if self._closed or self.netns is None:
            raise InfrastructureError("no box to start a container next to")
        if service.name in self.running:
            raise InfrastructureError(f"a container named '{service.name}' is already running")
        if len(self.running) >= MAX_CONTAINERS:
            raise InfrastructureError(f"at most {MAX_CONTAINERS} containers run next to a box")
        api = self.engine.control.api
        host_config = api.create_host_config(
            network_mode=f"container:{self.netns}",
            pids_limit=self.pids_limit,
            mem_limit=f"{self.memory_mb}m",
        )
        try:
            created = api.create_container(
                image,
                command=list(service.cmd) if service.cmd is not None else None,
                entrypoint=list(service.entrypoint) if service.entrypoint is not None else None,
                environment=dict(service.env),
                host_config=host_config,
                name=box_name(),
            )
            container = str(created["Id"])
            self.running[service.name] = container
            api.start(container)
            config = api.inspect_image(image)["Config"] or {}
        except DockerException as err:
            raise InfrastructureError(f"cannot start '{service.name}': {_text(err)}") from None
        self._check_started(service.name, container, log)
        log.info(f"'{service.name}' ({service.image}) running as container {container[:12]}")
        return link_env(service.name, exposed_ports(config))

    def stop(self, name: str) -> bool:
        """Stops and removes the container ``name``; whether it was there."""
        container = self.running.pop(name, None)
        if container is None:
            return False
        with contextlib.suppress(DockerException):
            self.engine.control.api.remove_container(container, force=True, v=True)
        return True

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for name in list(self.running):
            self.stop(name)
        if self.holder:
            with contextlib.suppress(DockerException):
                self.engine.control.api.remove_container(self.holder, force=True, v=True)

    def _check_started(self, name: str, container: str, log: Log) -> None:
        api = self.engine.control.api
        time.sleep(START_CHECK_SECONDS)
        try:
            state = api.inspect_container(container)["State"]
        except DockerException as err:
            raise InfrastructureError(f"'{name}' is gone after it started: {_text(err)}") from None
        if state.get("Running"):
            return
        tail = ""
        with contextlib.suppress(DockerException):
            raw = api.logs(container, stdout=True, stderr=True, tail=TAIL_LINES)
            tail = raw.decode("utf-8", "replace")[-TAIL_CHARS:].strip()
        # The tail goes to the log only (masked there); the error, which may reach a
        # commit status, says nothing the container printed.
        if tail:
            log.warn(f"last output of '{name}':\n{tail}")
        code = state.get("ExitCode")
        raise InfrastructureError(f"'{name}' stopped right after it started (exit {code})")


def _text(err: BaseException) -> str:
    explanation = getattr(err, "explanation", None)
    if explanation:
        return str(explanation)
    text = str(err)
    return text.splitlines()[0] if text else type(err).__name__
