"""``bot.pushers.daemonless``: the pusher's base image (the box ``internal/docker-push``
builds on) on a registry host that does not resolve: the user's wercker.yml (failed,
``UnknownRegistryHost`` naming the host and ``box``), unless the user never named that
host (errored).

The pusher runs on the in-memory registry (``tests/fakes/registry.py``) for the target, and
a transport that answers every request for the base's host as DNS does for a name it does
not know. tests/integration/registry/test_base_image.py does the same on real registries."""

from __future__ import annotations

import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import requests
import urllib3

from bot.errors import RegistryUnavailable, StepError, UnknownRegistryHost
from bot.imageref import DOCKER_HUB
from bot.logs import Log, MemoryLog
from bot.pushers.credentials import RegistryCredentials
from bot.pushers.daemonless import DaemonlessPusher
from bot.pushers.model import (
    ImageConfig,
    ImageRef,
    ImageSpec,
    LayerDir,
    RegistryAuth,
    Scheme,
    Target,
)
from bot.pushers.registry.base_image import BASE_NAMED_IN
from bot.pushers.registry.client import RegistryClient, RetryPolicy
from bot.pushers.registry.transport import Transport
from bot.pushers.registry.transport_errors import STEP_OPTION
from tests.fakes.registry import FakeRegistry

TARGET_HOST = "registry.test"


class NoSuchHost:
    """``Transport``: DNS says the host does not exist (``EAI_NONAME``), or that it cannot
    tell for now (``EAI_AGAIN``), for every request."""

    def __init__(self, errno: int = socket.EAI_NONAME) -> None:
        self.errno = errno

    def request(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        host = urllib3.util.parse_url(url).host or ""
        conn = urllib3.connection.HTTPSConnection(host, 443)
        gai = socket.gaierror(self.errno, "Name or service not known")
        resolve = urllib3.exceptions.NameResolutionError(host, conn, gai)
        resolve.__cause__ = gai
        raise requests.ConnectionError(urllib3.exceptions.MaxRetryError(None, url, resolve))  # type: ignore[arg-type]

    def close(self) -> None:
        pass


class Pusher(DaemonlessPusher):
    """Its clients talk to ``transports[host]`` instead of the network."""

    def __init__(self, cache: Path, transports: Mapping[str, Transport]) -> None:
        super().__init__({}, cache, credentials=RegistryCredentials({}), retry=RetryPolicy(1))
        self.transports = transports

    def client(
        self, registry: str, scheme: Scheme, auth: RegistryAuth, log: Log | None = None
    ) -> RegistryClient:
        return RegistryClient(
            registry,
            scheme,
            auth,
            {},
            credentials=self.credentials,
            retry=RetryPolicy(1),
            log=log,
            transport=self.transports[registry],
            sleep=lambda _: None,
        )


def push_on(tmp_path: Path, base: ImageRef, transports: Mapping[str, Transport]) -> None:
    source = tmp_path / "src"
    source.mkdir(exist_ok=True)
    (source / "hello.txt").write_text("hi")
    image = ImageSpec([LayerDir(source, "/app")], ImageConfig(), base=base)
    target = Target(TARGET_HOST, "acme/app", ("v1",), "https", RegistryAuth())
    Pusher(tmp_path / "cache", transports).push(image, target, MemoryLog())


def box(registry: str) -> ImageRef:
    return ImageRef(registry, "acme/box", "1", "https", RegistryAuth())


def test_a_box_on_a_host_that_does_not_exist_fails_naming_host_and_key(tmp_path: Path) -> None:
    transports: dict[str, Transport] = {
        TARGET_HOST: FakeRegistry(TARGET_HOST),
        "no-such-host.invalid": NoSuchHost(),
    }
    with pytest.raises(UnknownRegistryHost) as info:
        push_on(tmp_path, box("no-such-host.invalid"), transports)
    err = info.value
    assert isinstance(err, StepError)  # failed: the user's wercker.yml
    assert "no-such-host.invalid" in str(err) and "wercker.yml 'box'" in str(err)
    assert (err.host, err.named_in) == ("no-such-host.invalid", BASE_NAMED_IN)
    assert (err.registry, err.repository, err.action) == (
        "no-such-host.invalid",
        "acme/box",
        "pull",
    )


def test_a_box_whose_port_is_named_too_is_still_the_users_host(tmp_path: Path) -> None:
    transports: dict[str, Transport] = {
        TARGET_HOST: FakeRegistry(TARGET_HOST),
        "nohost.invalid:5000": NoSuchHost(),
    }
    with pytest.raises(UnknownRegistryHost) as info:
        push_on(tmp_path, box("nohost.invalid:5000"), transports)
    assert info.value.host == "nohost.invalid" and info.value.registry == "nohost.invalid:5000"


@pytest.mark.parametrize(
    ("registry", "errno"),
    [
        (DOCKER_HUB, socket.EAI_NONAME),  # the user wrote `busybox`: the bot's DNS
        ("reg.example.com", socket.EAI_AGAIN),  # DNS cannot tell for now: the bot's
    ],
)
def test_a_base_host_the_user_did_not_get_wrong_is_errored(
    tmp_path: Path, registry: str, errno: int
) -> None:
    transports: dict[str, Transport] = {
        TARGET_HOST: FakeRegistry(TARGET_HOST),
        registry: NoSuchHost(errno),
    }
    with pytest.raises(RegistryUnavailable) as info:
        push_on(tmp_path, box(registry), transports)
    assert not isinstance(info.value, StepError)
    assert info.value.registry == registry


def test_the_target_host_still_names_the_steps_option(tmp_path: Path) -> None:
    transports: dict[str, Transport] = {
        TARGET_HOST: NoSuchHost(),
        "other.test": FakeRegistry("other.test"),
    }
    with pytest.raises(UnknownRegistryHost) as info:
        push_on(tmp_path, box("other.test"), transports)
    assert info.value.named_in == STEP_OPTION and info.value.registry == TARGET_HOST
    assert "the step's 'repository' (or 'registry') option" in str(info.value)
