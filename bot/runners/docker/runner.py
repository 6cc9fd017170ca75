"""Opening a docker session: pull the box, start its container, copy the source in."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from docker.errors import APIError, DockerException

from bot.engine import CredentialResolver, EngineHandle
from bot.errors import InfrastructureError, WerckerFileError
from bot.images import ImageRef
from bot.logs import Log
from bot.runners.base import ServiceBox, Workspace
from bot.runners.docker.archive import tar_directory
from bot.runners.docker.engine import ClientFactory, engine_url, make_client
from bot.runners.docker.execs import run_capped
from bot.runners.docker.pulls import pull
from bot.runners.docker.services import ServiceSet
from bot.runners.docker.session import HELPER_GUEST, HELPER_TMPFS, DockerSession
from bot.runners.docker.sweep import box_name
from bot.settings import RegistrySettings

# PID 1 of the box: it must outlive every step, die on SIGTERM (so a step's ``kill 1``
# stops the container, as it did under Wercker), and not hold a signal until a long
# ``sleep`` ends (hence ``sleep & wait``).
KEEPALIVE = ["sh", "-c", "trap 'exit 0' TERM INT; while :; do sleep 3600 & wait $!; done"]
CONTROL_TIMEOUT = 120.0
# At most this many processes (threads included) in a box container: a fork bomb in a step
# stops there instead of exhausting the host's pids.
PIDS_LIMIT = 4096
MEMORY_MB = 4096
# The bot's own small commands in the box print a word or nothing; more is not read.
_SMALL_OUTPUT = 4096


class DockerRunner:
    """Runs pipelines in box containers on a Docker Engine.

    ``docker_host`` is the engine (``None``: ``DOCKER_HOST`` or the default socket);
    ``network`` the network mode of box containers and builds (``none`` unless configured);
    ``pids_limit`` how many processes a box container may hold (``PIDS_LIMIT``);
    ``memory_mb`` how much memory it may use (``[runner] memory_mb``; past it the kernel
    kills the step's biggest process, not the bot);
    ``client_factory`` builds clients (tests, custom TLS); ``credentials`` resolves registry
    credentials for pulls and pushes: the composition root passes the daemonless pusher's
    rules (``bot.pushers.credentials.RegistryCredentials``: ECR login tokens, Azure,
    gcr.io); without it pulls use ``bot.engine.basic_credentials``. The cache bind
    mount needs the engine on this host. Nothing else of the host is mounted: the bot's
    per-step files live in a tmpfs inside the box (``HELPER_GUEST``). Each box container is
    named after the bot process that made it (``sweep.box_name``), so that a running bot can
    remove the boxes of one that died (``sweep.sweep_boxes``). Services and
    ``internal/docker-run`` containers (``bot.runners.docker.services``) are named the same
    way, bounded the same way, and removed with the session.
    """

    kind = "docker"

    def __init__(
        self,
        docker_host: str | None = None,
        network: str = "none",
        *,
        client_factory: ClientFactory | None = None,
        credentials: CredentialResolver | None = None,
        registries: Mapping[str, RegistrySettings] | None = None,
        pids_limit: int = PIDS_LIMIT,
        memory_mb: int = MEMORY_MB,
    ) -> None:
        self.docker_host = docker_host
        self.network = network or "none"
        self.pids_limit = pids_limit
        self.memory_mb = memory_mb
        self.registries: Mapping[str, RegistrySettings] = registries or {}
        self.credentials = credentials
        self._factory: ClientFactory = client_factory or (
            lambda timeout: make_client(docker_host, timeout)
        )

    runs_services = True

    def open(
        self,
        box: ImageRef | None,
        box_env: dict[str, str],
        workspace: Workspace,
        base_path: str | None,
        log: Log,
        *,
        services: Sequence[ServiceBox] = (),
    ) -> DockerSession:
        """Pulls and starts the box (after ``services``, see ``bot.runners.docker.services``)
        and copies the source in. Raises ``InfrastructureError`` when any of it fails, but a
        pull the engine could not do raises the registry's error with its facts
        (``bot.runners.docker.pulls.pull_error``: ``RegistryError``, failed, when the user's
        image is refused, missing or on a host that does not exist); what was started by
        then is removed."""
        if box is None:
            # Never fall back to running on the host: an operator who chose the docker
            # runner chose to keep builds off it.
            raise WerckerFileError(
                "wercker.yml names no box; the docker runner runs steps in a box container: "
                "add `box: <image>`"
            )
        engine = self._engine()
        source_path = (base_path or "").rstrip("/") or "/pipeline/source"
        session = DockerSession(engine, workspace, box_env, source_path, log)
        session.services = ServiceSet(engine, self.pids_limit, self.memory_mb)
        what = f"the box {box}"
        try:
            image = pull(engine, box, log)
            session.box_config = engine.control.api.inspect_image(image)["Config"] or {}
            network = engine.network
            if services:
                what = "the services"
                network = f"container:{_start_services(session, image, services, log)}"
                what = f"the box {box}"
            session.container_id = _create(
                engine, image, session, workspace, (network, self.pids_limit, self.memory_mb)
            )
            engine.control.api.start(session.container_id)
            if not services:
                session.services.netns = session.container_id
            session.shell = _shell(engine, session.container_id)
            _prepare(engine, session, session.container_id, workspace, log)
            session.add_hosts([s.name for s in services], log)
        except DockerException as err:
            session.close()
            raise InfrastructureError(f"cannot start {what}: {_text(err)}") from None
        except BaseException:
            session.close()
            raise
        log.info(f"box {box} running as container {session.container_id[:12]}")
        return session

    def _engine(self) -> EngineHandle:
        try:
            control = self._factory(CONTROL_TIMEOUT)
        except DockerException as err:
            raise InfrastructureError(
                f"no Docker Engine at {engine_url(self.docker_host)}: {err}"
            ) from None
        try:
            stream = self._factory(None)
        except DockerException as err:
            control.close()
            raise InfrastructureError(
                f"no Docker Engine at {engine_url(self.docker_host)}: {err}"
            ) from None
        return EngineHandle(control, stream, self.network, self.credentials, self.registries)


def _start_services(
    session: DockerSession, box_image: str, services: Sequence[ServiceBox], log: Log
) -> str:
    """Starts the namespace holder (from the box image) and each service in it, adding
    their link variables to the box env; returns the holder's id."""
    sidecars = session.services
    assert sidecars is not None
    entrypoint: list[str] | None = [] if session.box_config.get("Entrypoint") else None
    holder = sidecars.start_holder(box_image, KEEPALIVE, entrypoint)
    for service in services:
        image = pull(
            sidecars.engine,
            service.image,
            log,
            what=f"service '{service.name}'",
            named_in=f"wercker.yml 'services' ({service.name})",
        )
        session.box_env.update(sidecars.start(service, image, log))
    return holder


def _create(
    engine: EngineHandle,
    image: str,
    session: DockerSession,
    ws: Workspace,
    limits: tuple[str, int, int],
) -> str:
    """The box container: ``limits`` are its network mode, pids and memory (MB)."""
    network, pids_limit, memory_mb = limits
    api = engine.control.api
    binds = {str(ws.cache): {"bind": session.paths.cache, "mode": "rw"}}
    host_config = api.create_host_config(
        network_mode=network,
        binds=binds,
        tmpfs={HELPER_GUEST: HELPER_TMPFS},
        pids_limit=pids_limit,
        mem_limit=f"{memory_mb}m",
    )
    # Only a box with an ENTRYPOINT needs it overridden; leaving it null otherwise keeps
    # the commit from inheriting an empty one.
    entrypoint: list[str] | None = [] if session.box_config.get("Entrypoint") else None
    created: dict[str, Any] = api.create_container(
        image,
        command=KEEPALIVE,
        entrypoint=entrypoint,
        host_config=host_config,
        # The owner goes in the name, not a label: labels end up in committed images.
        name=box_name(),
        stdin_open=False,
        tty=False,
    )
    return str(created["Id"])


def _shell(engine: EngineHandle, container: str) -> str:
    """bash when the box has it, else sh (decided once: the box does not change)."""
    got = run_capped(
        engine.control.api, container, ["sh", "-c", "command -v bash"], limit=_SMALL_OUTPUT
    )
    return "bash" if got.exit_code == 0 and got.stdout.strip() else "sh"


def _prepare(
    engine: EngineHandle, session: DockerSession, container: str, ws: Workspace, log: Log
) -> None:
    """Creates the guest dirs and copies the source in. The dirs are made as root and
    handed to the box's user, so a box with a non-root USER can still write its source."""
    api = engine.control.api
    paths = session.paths
    user = str(session.box_config.get("User") or "")
    made = run_capped(
        api,
        container,
        ["sh", "-c", 'mkdir -p "$WB_SOURCE" "$WB_OUTPUT"'],
        user="0",
        env={"WB_SOURCE": paths.source, "WB_OUTPUT": paths.output},
        limit=_SMALL_OUTPUT,
    )
    if made.exit_code != 0:
        raise InfrastructureError(f"cannot create {paths.source} in the box")
    session.open_helper_dir()
    with tar_directory(ws.source, ws.root) as tar:
        if not api.put_archive(container, paths.source, tar):
            raise InfrastructureError(f"cannot copy the source into {paths.source}")
    if user and user not in ("0", "root", "0:0", "root:root"):
        owned = run_capped(
            api,
            container,
            ["sh", "-c", 'chown -R "$WB_USER" "$WB_SOURCE" "$WB_OUTPUT"'],
            user="0",
            env={"WB_USER": user, "WB_SOURCE": paths.source, "WB_OUTPUT": paths.output},
            limit=_SMALL_OUTPUT,
        )
        if owned.exit_code != 0:
            log.warn(f"could not hand {paths.source} to the box user {user}")


def _text(err: BaseException) -> str:
    if isinstance(err, APIError) and err.explanation:
        return str(err.explanation)
    text = str(err)
    return text.splitlines()[0] if text else type(err).__name__
