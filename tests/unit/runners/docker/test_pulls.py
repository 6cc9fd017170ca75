"""Classifying a failed pull on the Docker Engine into a registry error with its facts.

The engine's messages below are what Docker Engine 20.10 answers (captured from the private
engine of tests/integration/docker, where tests/integration/docker/test_pulls.py checks the
same against it). ``pull`` runs here against a fake engine client."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, cast

import pytest
import requests
from docker.errors import APIError, DockerException

from bot.engine import EngineHandle
from bot.errors import (
    InfrastructureError,
    RegistryAuthError,
    RegistryError,
    RegistryProblem,
    RegistryUnavailable,
    StepError,
    UnknownRegistryHost,
)
from bot.imageref import DOCKER_HUB
from bot.images import ImageRef, RegistryAuth
from bot.logs import MemoryLog
from bot.runners.docker.pulls import _scrub, pull, pull_error, unresolved_host

NXDOMAIN = (
    'Get "https://no-such-host.invalid/v2/": dial tcp: lookup no-such-host.invalid on '
    "10.255.255.53:53: no such host"
)
NOT_FOUND = "manifest for 127.0.0.1:5000/nope/x:1 not found: manifest unknown: manifest unknown"
WRONG_PASSWORD = "unauthorized: authentication required"
NO_CREDENTIALS = 'Head "http://127.0.0.1:5000/v2/nope/x/manifests/1": no basic auth credentials'
REFUSED = 'Get "http://127.0.0.1:1/v2/": dial tcp 127.0.0.1:1: connect: connection refused'
DNS_DOWN = (
    'Get "https://reg.example.com/v2/": dial tcp: lookup reg.example.com on 10.0.0.53:53: '
    "server misbehaving"
)


def image(registry: str = "127.0.0.1:5000", repository: str = "nope/x") -> ImageRef:
    return ImageRef(registry, repository, "1", "auto", RegistryAuth())


def test_a_box_on_a_host_that_does_not_exist_is_the_users_mistake() -> None:
    err = pull_error(image("no-such-host.invalid", "x"), NXDOMAIN, 500)
    assert isinstance(err, UnknownRegistryHost) and isinstance(err, StepError)
    assert "no-such-host.invalid" in str(err) and "wercker.yml 'box'" in str(err)
    assert (err.host, err.named_in) == ("no-such-host.invalid", "wercker.yml 'box'")
    assert (err.registry, err.repository, err.action) == ("no-such-host.invalid", "x", "pull")


def test_a_service_names_its_own_key() -> None:
    err = pull_error(
        image("no-such-host.invalid:5000", "db"),
        NXDOMAIN,
        500,
        what="service 'db'",
        named_in="wercker.yml 'services' (db)",
    )
    assert isinstance(err, UnknownRegistryHost)
    assert "wercker.yml 'services' (db)" in str(err) and err.registry.endswith(":5000")


def test_a_host_the_user_did_not_name_is_the_bots_environment() -> None:
    # Docker Hub (the user wrote ``busybox``), or a mirror in front of the named registry.
    hub = pull_error(image(DOCKER_HUB, "library/busybox"), NXDOMAIN, 500)
    other = pull_error(image("registry.example.com"), NXDOMAIN, 500)
    for err in (hub, other):
        assert type(err) is RegistryUnavailable
        assert err.unresolved_host == "no-such-host.invalid" and err.action == "pull"


def test_a_temporary_dns_failure_is_the_bots_environment() -> None:
    err = pull_error(image("reg.example.com"), DNS_DOWN, 500)
    assert type(err) is RegistryUnavailable and err.unresolved_host is None


@pytest.mark.parametrize(
    ("message", "engine_status", "codes"),
    [
        (WRONG_PASSWORD, 500, ("UNAUTHORIZED",)),
        (NO_CREDENTIALS, 500, ("UNAUTHORIZED",)),
        ("denied: requested access to the resource is denied", 404, ("DENIED",)),
    ],
)
def test_refused_credentials_fail_with_the_registrys_codes(
    message: str, engine_status: int, codes: tuple[str, ...]
) -> None:
    err = pull_error(image(), message, engine_status)
    assert isinstance(err, RegistryAuthError) and isinstance(err, StepError)
    assert err.codes == codes
    # the engine's own 4xx is the registry's; its 500 is not: the code stands for it
    assert err.http_status == (401 if engine_status == 500 else engine_status)
    assert "pulling box 127.0.0.1:5000/nope/x:1 failed" in str(err)
    assert '[registries."127.0.0.1:5000"]' in str(err)


def test_a_missing_image_fails_with_404_and_the_code() -> None:
    err = pull_error(image(), NOT_FOUND, 404)
    assert type(err) is RegistryError
    assert (err.http_status, err.codes) == (404, ("MANIFEST_UNKNOWN",))
    assert (err.registry, err.repository, err.action) == ("127.0.0.1:5000", "nope/x", "pull")
    assert "check the image name and tag in wercker.yml 'box'" in str(err)


def test_an_unreachable_registry_errors_without_a_status() -> None:
    err = pull_error(image("127.0.0.1:1"), REFUSED, 500)
    assert type(err) is RegistryUnavailable
    assert (err.http_status, err.codes, err.unresolved_host) == (None, (), None)
    assert "connection refused" in str(err)


def test_unresolved_host_reads_only_an_nxdomain_lookup() -> None:
    assert unresolved_host(NXDOMAIN) == "no-such-host.invalid"
    assert unresolved_host("dial tcp: lookup reg.example.: no such host") == "reg.example"
    assert unresolved_host(DNS_DOWN) is None
    assert unresolved_host(REFUSED) is None


# -- pull() against a fake engine client ---------------------------------------------------


class _Api:
    def __init__(self, pulled: Any) -> None:
        self.pulled = pulled
        self.inspected: list[str] = []

    def pull(self, repo: str, **kwargs: Any) -> Iterator[Any]:
        if isinstance(self.pulled, BaseException):
            raise self.pulled
        return iter(self.pulled)

    def inspect_image(self, ref: str) -> dict[str, Any]:
        self.inspected.append(ref)
        return {"Config": {}}


class _Client:
    def __init__(self, api: _Api) -> None:
        self.api = api


def engine(pulled: Any) -> EngineHandle:
    client = cast(Any, _Client(_Api(pulled)))
    return EngineHandle(client, client)


def api_error(status: int, explanation: str) -> APIError:
    response = requests.Response()
    response.status_code = status
    return APIError("500 Server Error", response=response, explanation=explanation)


def test_pull_maps_the_engines_status_and_explanation() -> None:
    with pytest.raises(RegistryError) as info:
        pull(engine(api_error(404, NOT_FOUND)), image(), MemoryLog())
    assert (info.value.http_status, info.value.codes) == (404, ("MANIFEST_UNKNOWN",))


def test_pull_reads_an_error_line_of_the_stream() -> None:
    lines = [
        {"status": "Pulling fs layer", "id": "abc"},
        {"errorDetail": {"message": WRONG_PASSWORD}, "error": WRONG_PASSWORD},
    ]
    with pytest.raises(RegistryAuthError) as info:
        pull(engine(lines), image(), MemoryLog())
    assert (info.value.http_status, info.value.codes) == (401, ("UNAUTHORIZED",))


def test_pull_hides_the_password_in_every_message() -> None:
    box = ImageRef("127.0.0.1:5000", "nope/x", "1", "auto", RegistryAuth("al", "s3cret-pw"))
    with pytest.raises(RegistryProblem) as info:
        pull(engine(api_error(500, f"{WRONG_PASSWORD} for s3cret-pw")), box, MemoryLog())
    assert "s3cret-pw" not in str(info.value) and "****" in str(info.value)


def test_an_engine_that_fails_itself_is_infrastructure_not_a_registry() -> None:
    with pytest.raises(InfrastructureError) as info:
        pull(engine(DockerException("engine went away")), image(), MemoryLog())
    assert not isinstance(info.value, RegistryProblem)
    assert "engine went away" in str(info.value)


def test_a_pulled_image_is_returned_by_its_local_reference() -> None:
    handle = engine([{"status": "Downloaded newer image"}])
    assert pull(handle, image(), MemoryLog()) == "127.0.0.1:5000/nope/x:1"


def test_pull_errors_never_show_credentials() -> None:
    assert _scrub("denied for s3cret-token", ["s3cret-token", ""]) == "denied for ****"
    assert _scrub("ab", ["ab"]) == "ab"  # too short to be a secret worth hiding
