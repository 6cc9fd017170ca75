"""Box containers whose bot died: found by name and removed by a bot still running.

A bot process killed mid-build (SIGKILL, OOM, power) leaves its box container running, with
the step's processes and the values of its exec env (secrets included) in it. Every box
container is therefore named after the process that created it (``box_name``), and the
recovery thread of every running bot (``WorkerPool.recover``) removes the box containers of
processes that are dead on this host (``sweep_boxes``), with the images their sessions built.
A pipeline's services, their network-namespace holder and its ``internal/docker-run``
containers are named the same way (``bot.runners.docker.services``), so they go too.

The owner is in the container's name, not in a label: the engine copies a container's
labels into every image committed from it, and the pushed image would carry them.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re
import secrets
import socket
from typing import Any

from docker.errors import DockerException, NotFound
from requests.exceptions import RequestException

from bot.errors import InfrastructureError
from bot.procs import process_alive, worker_name
from bot.runners.docker.engine import engine_url, make_client

logger = logging.getLogger(__name__)

BOX_PREFIX = "wercker-bot-"
BUILT_PREFIX = "wercker-bot-build/"
"""``EnginePusher.build`` tags what a session built ``wercker-bot-build/<id12>-…``."""
SWEEP_TIMEOUT = 30.0
"""The engine's read timeout during a sweep (the recovery thread waits at most this)."""

_OWNED = re.compile(r"^/?wercker-bot-[0-9a-f]{12}-p([0-9]+)-([0-9A-Za-z]+)-h([0-9a-f]{10})$")


class EngineUnavailable(InfrastructureError):
    """No Docker Engine answered at the configured address."""


def _host_id(host: str) -> str:
    """A short digest of a host name: container names allow only ``[a-zA-Z0-9_.-]``."""
    return hashlib.sha256(host.encode()).hexdigest()[:10]


def box_name(owner: str | None = None) -> str:
    """A fresh box container name naming ``owner`` (a ``worker_name``; default: this
    process): ``wercker-bot-<random>-p<pid>-<token>-h<host digest>``. An owner that cannot
    be written into a name gives a plain ``wercker-bot-<random>``, which no sweep removes."""
    random = secrets.token_hex(6)
    host, _, rest = (owner or worker_name()).partition(":")
    pid, _, rest = rest.partition(":")
    token = rest.split(":", 1)[0]
    name = f"{BOX_PREFIX}{random}-p{pid}-{token}-h{_host_id(host)}"
    return name if _OWNED.match(name) else f"{BOX_PREFIX}{random}"


def box_owner(name: str) -> str | None:
    """The ``host:pid:token`` owner of a box container named by ``box_name``, when that
    owner ran on this host; ``None`` for another host's boxes and for other names."""
    found = _OWNED.match(name)
    host = socket.gethostname()
    if found is None or found.group(3) != _host_id(host):
        return None
    return f"{host}:{found.group(1)}:{found.group(2)}"


def sweep_boxes(api: Any) -> list[str]:
    """Removes (killing what runs in them, with their anonymous volumes) the box containers
    whose owner process is dead on this host, and the images their sessions built; returns
    the names removed. Boxes of live processes, of other hosts and without an owner in
    their name are left alone. ``api`` is a docker ``APIClient``."""
    removed: list[str] = []
    for container in api.containers(all=True, filters={"name": BOX_PREFIX}):
        names = [str(n).lstrip("/") for n in container.get("Names") or []]
        name = next((n for n in names if n.startswith(BOX_PREFIX)), "")
        owner = box_owner(name)
        if owner is None or process_alive(owner) is not False:
            continue
        try:
            api.remove_container(container["Id"], force=True, v=True)
        except NotFound:
            continue  # removed meanwhile (another bot's sweep)
        except DockerException as err:
            logger.warning("cannot remove the box container %s of a dead process: %s", name, err)
            continue
        removed.append(name)
        _remove_built_images(api, str(container["Id"])[:12])
    return removed


def _remove_built_images(api: Any, short_id: str) -> None:
    with contextlib.suppress(DockerException):
        for image in api.images(filters={"reference": f"{BUILT_PREFIX}{short_id}-*"}):
            for tag in image.get("RepoTags") or []:
                if tag.startswith(f"{BUILT_PREFIX}{short_id}-"):
                    with contextlib.suppress(DockerException):
                        api.remove_image(tag, force=True)


def sweep_dead_boxes(docker_host: str | None, timeout: float = SWEEP_TIMEOUT) -> list[str]:
    """``sweep_boxes`` on the engine at ``docker_host`` (``None``: the environment's).
    Raises ``EngineUnavailable`` when no engine answers."""
    try:
        client = make_client(docker_host, timeout)
    except (DockerException, RequestException, OSError) as err:
        text = str(err).splitlines()[0][:200] if str(err) else type(err).__name__
        raise EngineUnavailable(f"no Docker Engine at {engine_url(docker_host)}: {text}") from None
    try:
        return sweep_boxes(client.api)
    finally:
        with contextlib.suppress(Exception):
            client.close()
