"""Reaching a Docker Engine: building clients and the one-ping check behind ``auto``."""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Callable

import docker
from docker.errors import DockerException

DEFAULT_HOST = "unix:///var/run/docker.sock"

ClientFactory = Callable[[float | None], docker.DockerClient]
"""Builds a client with the given read timeout in seconds (``None``: wait forever)."""


def engine_url(docker_host: str | None) -> str:
    """The engine address as the log shows it: the setting, else ``DOCKER_HOST``, else the
    default socket."""
    return docker_host or os.environ.get("DOCKER_HOST") or DEFAULT_HOST


def make_client(docker_host: str | None, timeout: float | None = 60.0) -> docker.DockerClient:
    """A client for ``docker_host`` (``None``: the environment's engine). The API version is
    negotiated, so creating the client already talks to the engine: it raises
    ``DockerException`` when the engine does not answer."""
    _reach_socket(engine_url(docker_host), timeout)
    # docker-py treats ``timeout=None`` as "no read timeout", which the streaming calls need:
    # a silent build step or a slow push must not be cut off by the client.
    if docker_host:
        return docker.DockerClient(base_url=docker_host, version="auto", timeout=timeout)
    return docker.from_env(version="auto", timeout=timeout)


def _reach_socket(url: str, timeout: float | None) -> None:
    """Connects once to a ``unix://`` engine's socket, and closes it, before docker-py does:
    docker-py's unix connection leaves its socket open when the connect fails (nothing
    closes it until garbage collection), so a bot asking a missing engine again and again
    would pile them up. Raises ``DockerException`` with the reason; other schemes pass."""
    if not url.startswith(("unix://", "http+unix://")):
        return
    path = "/" + url.split("://", 1)[1].lstrip("/")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(timeout)
        try:
            probe.connect(path)
        except OSError as err:
            raise DockerException(f"cannot connect to {path}: {err}") from None


def engine_available(docker_host: str | None, timeout: float = 2.0) -> tuple[bool, str]:
    """Pings the engine once. Returns whether it answered and the line the build log starts
    with: ``runner: docker (engine 20.10.24 at unix:///…)`` or
    ``runner: local (no Docker Engine at …: connection refused)``."""
    where = engine_url(docker_host)
    try:
        client = make_client(docker_host, timeout)
        try:
            version = client.version().get("Version", "?")
        finally:
            client.close()
    except (DockerException, OSError) as err:
        return False, f"runner: local (no Docker Engine at {where}: {_reason(err)})"
    return True, f"runner: docker (engine {version} at {where})"


def close_stream(stream: object) -> None:
    """Closes a stream docker-py returned (``exec_start(stream=True)``, ``logs(stream=True)``,
    ``events()``) and the HTTP response under it, releasing its socket. Never raises.

    docker-py's own ``CancellableStream.close`` only shuts the socket down: the response's
    file still holds the descriptor, and nothing closes it until garbage collection (a
    long-running bot would pile them up). The stream may be read on another thread: the
    shutdown ends that read first."""
    close = getattr(stream, "close", None)
    if close is not None:
        with contextlib.suppress(Exception):
            close()
    response = getattr(stream, "_response", None)
    if response is not None:
        with contextlib.suppress(Exception):
            response.close()


def _reason(err: BaseException) -> str:
    """The root cause in a few words: docker-py wraps it in two or three layers of text."""
    text = str(err)
    lowered = text.lower()
    for needle in (
        "connection refused",
        "no such file or directory",
        "permission denied",
        "timed out",
        "name or service not known",
    ):
        if needle in lowered:
            return needle
    return text.splitlines()[0][:160] if text else type(err).__name__
