"""Box and service pulls the engine cannot do, against the real engine and registry: each
ends as the registry error with its facts (``bot.runners.docker.pulls``), on the side it
belongs to (``StepError``: failed; ``InfrastructureError``: errored), and leaves no
container behind."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bot.errors import (
    RegistryAuthError,
    RegistryError,
    RegistryUnavailable,
    StepError,
    UnknownRegistryHost,
)
from bot.images import ImageRef, RegistryAuth
from bot.logs import MemoryLog
from bot.runners.base import ServiceBox, Workspace
from bot.runners.docker import DockerRunner
from bot.runners.docker.pulls import unresolved_host
from tests.harness.dockerd import Dockerd
from tests.integration.docker.conftest import Registry, _own_registry

NO_SUCH_HOST = "no-such-host.invalid"


def _our_containers(dockerd: Dockerd) -> set[str]:
    client = dockerd.client()
    return {c.name for c in client.containers.list(all=True) if c.name.startswith("wercker-bot-")}


def test_the_engines_lookup_message_is_what_unresolved_host_reads(dockerd: Dockerd) -> None:
    import docker

    with pytest.raises(docker.errors.APIError) as info:
        dockerd.client().api.pull(f"{NO_SUCH_HOST}/x", tag="1", auth_config={})
    assert unresolved_host(str(info.value.explanation)) == NO_SUCH_HOST


def test_a_box_on_a_host_that_does_not_resolve_fails_naming_host_and_key(
    runner: DockerRunner, workspace: Workspace, dockerd: Dockerd
) -> None:
    before = _our_containers(dockerd)
    box = ImageRef(NO_SUCH_HOST, "x", "1", "auto", RegistryAuth())
    with pytest.raises(UnknownRegistryHost) as info:
        runner.open(box, {}, workspace, None, MemoryLog())
    err = info.value
    assert isinstance(err, StepError)  # the user's wercker.yml: failed, not errored
    assert NO_SUCH_HOST in str(err) and "wercker.yml 'box'" in str(err)
    assert (err.host, err.registry, err.repository, err.action) == (
        NO_SUCH_HOST,
        NO_SUCH_HOST,
        "x",
        "pull",
    )
    assert _our_containers(dockerd) <= before


def test_a_service_on_a_host_that_does_not_resolve_names_the_services_key(
    runner: DockerRunner, busybox_box: ImageRef, workspace: Workspace, dockerd: Dockerd
) -> None:
    before = _our_containers(dockerd)
    db = ServiceBox("db", ImageRef(NO_SUCH_HOST, "acme/db", "1", "auto", RegistryAuth()))
    with pytest.raises(UnknownRegistryHost) as info:
        runner.open(busybox_box, {}, workspace, None, MemoryLog(), services=[db])
    assert "wercker.yml 'services' (db)" in str(info.value)
    assert info.value.repository == "acme/db"
    assert _our_containers(dockerd) <= before  # the namespace holder is gone too


def test_a_box_the_registry_does_not_have_fails_with_404(
    runner: DockerRunner, box_registry: Registry, workspace: Workspace
) -> None:
    box = box_registry.box("library/nothing-here", "1.0")
    with pytest.raises(RegistryError) as info:
        runner.open(box, {}, workspace, None, MemoryLog())
    err = info.value
    assert type(err) is RegistryError
    assert (err.registry, err.repository, err.action) == (
        box_registry.host,
        "library/nothing-here",
        "pull",
    )
    assert (err.http_status, err.codes) == (404, ("MANIFEST_UNKNOWN",))
    assert "check the image name and tag in wercker.yml 'box'" in str(err)


@pytest.fixture(scope="module")
def plain_auth_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A registry with Basic auth over plain HTTP. (Anonymous, the engine ends a pull from
    the TLS ``auth_registry`` with its plain-HTTP fallback's connection reset, and never
    says that credentials were wanted.)"""
    proc, host = _own_registry(tmp_path_factory.mktemp("plain-auth"), {"alice": "pw-12345"})
    try:
        yield host
    finally:
        proc.terminate()
        proc.wait(10)


def test_a_box_the_registry_refuses_fails_with_401_and_no_password(
    runner: DockerRunner, auth_registry: Registry, workspace: Workspace, dockerd: Dockerd
) -> None:
    before = _our_containers(dockerd)
    auth = RegistryAuth("alice", "wrong-password-123")
    box = ImageRef(auth_registry.host, "library/nothing-here", "latest", "auto", auth)
    with pytest.raises(RegistryAuthError) as info:
        runner.open(box, {}, workspace, None, MemoryLog())
    err = info.value
    assert (err.registry, err.action, err.http_status, err.codes) == (
        auth_registry.host,
        "pull",
        401,
        ("UNAUTHORIZED",),
    )
    assert "pulling box" in str(err) and auth_registry.host in str(err)
    assert "wrong-password-123" not in str(err)
    assert _our_containers(dockerd) <= before


def test_a_box_pulled_without_the_credentials_it_needs_fails_with_401(
    runner: DockerRunner, plain_auth_registry: str, workspace: Workspace
) -> None:
    box = ImageRef(plain_auth_registry, "library/busybox", "latest", "auto", RegistryAuth())
    with pytest.raises(RegistryAuthError) as info:
        runner.open(box, {}, workspace, None, MemoryLog())
    assert (info.value.http_status, info.value.codes) == (401, ("UNAUTHORIZED",))
    assert f'[registries."{plain_auth_registry}"]' in str(info.value)


def test_a_registry_that_is_not_listening_errors(
    runner: DockerRunner, workspace: Workspace
) -> None:
    import socket

    with socket.socket() as sock:  # a port nothing listens on once closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    box = ImageRef(f"127.0.0.1:{port}", "x", "1", "auto", RegistryAuth())
    with pytest.raises(RegistryUnavailable) as info:
        runner.open(box, {}, workspace, None, MemoryLog())
    assert not isinstance(info.value, StepError)  # the bot's environment: errored
    assert (info.value.action, info.value.http_status) == ("pull", None)
    assert "connection refused" in str(info.value)
