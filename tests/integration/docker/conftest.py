"""Fixtures for the docker runner tests: a private engine (``tests.harness.dockerd``), a
registry holding a busybox box, and per-test workspaces.

The shared harness fixtures (``registry_plain``, ``registry_factory``, ``busybox_image``) are
used when they are registered, so the box is pulled from a real registry pushed by our own
daemonless pusher, as in production. Without them these fixtures start ``docker-registry``
themselves and push a busybox imported into the engine.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from bot.images import ImageRef, RegistryAuth
from bot.runners.base import Workspace
from bot.runners.docker import DockerRunner
from tests.harness.dockerd import Dockerd, import_busybox

pytestmark = pytest.mark.docker
REGISTRY_BIN = "docker-registry"


@dataclass
class Registry:
    """What the tests need of a registry: where it is, how to log in, how to name images."""

    host: str
    username: str = ""
    password: str = ""
    server: Any = None  # the shared harness's RegistryServer, when that was used

    @property
    def auth(self) -> RegistryAuth:
        return RegistryAuth(username=self.username, password=self.password)

    def box(self, repository: str = "library/busybox", tag: str = "latest") -> ImageRef:
        return ImageRef(self.host, repository, tag, "auto", self.auth)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _own_registry(directory: Path, users: dict[str, str] | None = None) -> tuple[Any, str]:
    """Starts ``docker-registry`` on loopback (plain HTTP; htpasswd with ``users``)."""
    if shutil.which(REGISTRY_BIN) is None:
        pytest.skip("docker-registry is not installed (apt-get install docker-registry)")
    port = _free_port()
    cfg: dict[str, Any] = {
        "version": 0.1,
        "log": {"level": "warn", "accesslog": {"disabled": True}},
        "storage": {"filesystem": {"rootdirectory": str(directory / "data")}},
        "http": {"addr": f"127.0.0.1:{port}"},
    }
    if users:
        import bcrypt

        lines = [
            f"{user}:{bcrypt.hashpw(pw.encode(), bcrypt.gensalt(rounds=5)).decode()}"
            for user, pw in users.items()
        ]
        (directory / "htpasswd").write_text("\n".join(lines) + "\n")
        cfg["auth"] = {"htpasswd": {"realm": "test", "path": str(directory / "htpasswd")}}
    (directory / "config.yml").write_text(json.dumps(cfg))
    proc = subprocess.Popen(
        [REGISTRY_BIN, "serve", str(directory / "config.yml")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
    while True:
        try:
            requests.get(f"http://127.0.0.1:{port}/v2/", timeout=1)
            return proc, f"127.0.0.1:{port}"
        except requests.RequestException:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise RuntimeError("docker-registry did not start") from None
            time.sleep(0.1)


def _shared(request: pytest.FixtureRequest, name: str) -> Any:
    """The shared harness fixture ``name``, or None (also with ``WB_OWN_FIXTURES=1``, to
    exercise the fallbacks)."""
    if os.environ.get("WB_OWN_FIXTURES") == "1":
        return None
    try:
        return request.getfixturevalue(name)
    except pytest.FixtureLookupError:
        return None


@pytest.fixture(scope="session")
def box_registry(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Registry]:
    server = _shared(request, "registry_plain")
    if server is not None:
        yield Registry(server.host, server=server)
        return
    proc, host = _own_registry(tmp_path_factory.mktemp("registry-plain"))
    try:
        yield Registry(host)
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture(scope="session")
def auth_registry(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Registry]:
    """A registry with Basic auth (htpasswd); user ``alice``."""
    users = {"alice": "correct-horse-battery"}
    factory = _shared(request, "registry_factory")
    if factory is not None:
        server = factory("htpasswd", users=users)
        yield Registry(server.host, "alice", users["alice"], server=server)
        return
    proc, host = _own_registry(tmp_path_factory.mktemp("registry-htpasswd"), users)
    try:
        yield Registry(host, "alice", users["alice"])
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture(scope="session")
def busybox_box(
    request: pytest.FixtureRequest, dockerd: Dockerd, box_registry: Registry
) -> ImageRef:
    """The busybox box in ``box_registry`` (``Cmd ["sh"]``, ``PATH`` set)."""
    push: Callable[[Any], str] | None = _shared(request, "busybox_image")
    if push is not None and box_registry.server is not None:
        ref = push(box_registry.server)
        repository, _, tag = ref.removeprefix(box_registry.host + "/").rpartition(":")
        return box_registry.box(repository, tag)
    client = dockerd.client()
    local = f"{box_registry.host}/library/busybox"
    import_busybox(client, local)
    for line in client.api.push(local, tag="latest", auth_config={}, stream=True, decode=True):
        assert "error" not in line, line
    client.api.remove_image(f"{local}:latest")
    return box_registry.box()


@pytest.fixture(scope="session")
def runner(dockerd: Dockerd) -> DockerRunner:
    return DockerRunner(dockerd.host)


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    return Workspace.create(tmp_path / "ws", tmp_path / "cache")
