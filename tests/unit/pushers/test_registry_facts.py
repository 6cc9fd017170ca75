"""Registry errors carry facts (``registry``, ``repository``, ``action``, ``http_status``,
``codes``) and their type alone says failed (the step) or errored (the bot's environment)."""

from __future__ import annotations

import json
import socket

import pytest
import requests
import urllib3

from bot.errors import (
    InfrastructureError,
    RegistryAuthError,
    RegistryError,
    RegistryProblem,
    RegistryUnavailable,
    StepError,
    UnknownRegistryHost,
)
from bot.pushers.engine.transfer import engine_codes, engine_push_error
from bot.pushers.model import Target
from bot.pushers.registry.errors import (
    action_of,
    auth_failure,
    error_for_response,
)
from bot.pushers.registry.transport_errors import unknown_host, unreachable


def _resp(status: int, codes: tuple[str, ...] = (), headers: dict[str, str] | None = None):
    resp = requests.Response()
    resp.status_code = status
    resp.reason = "x"
    body = {"errors": [{"code": c, "message": c.lower()} for c in codes]}
    resp._content = json.dumps(body).encode()
    resp.headers.update(headers or {})
    return resp


def test_the_tree_decides_failed_or_errored_by_type() -> None:
    assert issubclass(RegistryUnavailable, InfrastructureError)
    assert not issubclass(RegistryUnavailable, StepError)
    for cls in (RegistryError, RegistryAuthError, UnknownRegistryHost):
        assert issubclass(cls, StepError) and not issubclass(cls, InfrastructureError)
    for cls in (RegistryError, RegistryAuthError, UnknownRegistryHost, RegistryUnavailable):
        assert issubclass(cls, RegistryProblem)


@pytest.mark.parametrize(
    ("phrase", "action"),
    [
        ("push to", "push"),
        ("push v1 to", "push"),
        ("pull from", "pull"),
        ("connect", "ping"),
        ("answer for", "ping"),
        ("create repository", "create repository"),
    ],
)
def test_action_fact_from_the_message_phrase(phrase: str, action: str) -> None:
    assert action_of(phrase) == action


@pytest.mark.parametrize(
    ("status", "codes", "cls"),
    [
        (403, ("DENIED",), RegistryAuthError),
        (400, ("MANIFEST_INVALID",), RegistryError),
        (404, ("NAME_UNKNOWN",), RegistryError),
        (503, (), RegistryUnavailable),
        (429, ("TOOMANYREQUESTS",), RegistryUnavailable),
    ],
)
def test_error_for_response_carries_the_facts(
    status: int, codes: tuple[str, ...], cls: type
) -> None:
    err = error_for_response(
        _resp(status, codes), registry="r.example:5000", action="push to", repository="acme/app"
    )
    assert type(err) is cls
    assert (err.registry, err.repository, err.action) == ("r.example:5000", "acme/app", "push")
    assert err.http_status == status and err.codes == codes
    assert "\n" not in str(err) and "r.example:5000" in str(err)


def test_auth_failure_carries_the_facts_and_no_secret() -> None:
    err = auth_failure(
        _resp(401, ("UNAUTHORIZED",)),
        registry="r.example",
        action="push to",
        repository="acme/app",
        username="ci",
        secrets=["hunter22"],
    )
    assert isinstance(err, RegistryAuthError)
    assert (err.registry, err.action, err.http_status, err.codes) == (
        "r.example",
        "push",
        401,
        ("UNAUTHORIZED",),
    )
    assert "hunter22" not in str(err)


def _dns_error(host: str, errno: int = socket.EAI_NONAME) -> requests.ConnectionError:
    conn = urllib3.connection.HTTPSConnection(host, 443)
    gai = socket.gaierror(errno, "Name or service not known")
    resolve = urllib3.exceptions.NameResolutionError(host, conn, gai)
    resolve.__cause__ = gai  # urllib3 raises it ``from`` the gaierror
    retries = urllib3.exceptions.MaxRetryError(None, "/v2/", resolve)  # type: ignore[arg-type]
    return requests.ConnectionError(retries)


def test_unreachable_is_errored_and_names_the_host_dns_does_not_know() -> None:
    err = unreachable(
        "no-such-host.invalid", "push to", "acme/app", _dns_error("no-such-host.invalid")
    )
    assert isinstance(err, RegistryUnavailable)
    assert (err.registry, err.repository, err.action, err.http_status, err.codes) == (
        "no-such-host.invalid",
        "acme/app",
        "push",
        None,
        (),
    )
    assert err.unresolved_host == "no-such-host.invalid"


def test_a_temporary_dns_failure_is_not_an_unknown_host() -> None:
    err = unreachable("r.example", "connect", None, _dns_error("r.example", socket.EAI_AGAIN))
    assert err.unresolved_host is None and err.action == "ping"
    assert unknown_host(err, "r.example") is None


def test_connection_refused_is_errored_without_an_unresolved_host() -> None:
    refused = requests.ConnectionError(ConnectionRefusedError(111, "Connection refused"))
    err = unreachable("127.0.0.1:1", "connect", None, refused)
    assert isinstance(err, RegistryUnavailable) and err.unresolved_host is None
    assert "connection refused" in str(err)


def test_unknown_host_only_for_the_host_the_step_named() -> None:
    err = unreachable(
        "no-such-host.invalid:5000", "connect", None, _dns_error("no-such-host.invalid")
    )
    named = unknown_host(err, "no-such-host.invalid:5000")
    assert isinstance(named, UnknownRegistryHost) and isinstance(named, StepError)
    assert "does not resolve" in str(named) and named.registry == "no-such-host.invalid:5000"
    # a mirror_of host from [registries] (the bot's config) stays errored
    mirror = unreachable("mirror.internal", "connect", None, _dns_error("mirror.internal"))
    assert unknown_host(mirror, "no-such-host.invalid:5000") is None
    # Docker Hub is the bot's default, not a host the step named
    hub = unreachable("registry-1.docker.io", "connect", None, _dns_error("registry-1.docker.io"))
    assert unknown_host(hub, "registry-1.docker.io") is None


TARGET = Target("r.example:5000", "acme/app", ("latest",))


@pytest.mark.parametrize(
    ("message", "cls", "status", "codes"),
    [
        ("denied: requested access to the resource is denied", RegistryAuthError, 403, ("DENIED",)),
        ("unauthorized: authentication required", RegistryAuthError, 401, ("UNAUTHORIZED",)),
        ("manifest invalid: manifest invalid", RegistryError, None, ("MANIFEST_INVALID",)),
        ("no basic auth credentials", RegistryAuthError, None, ()),
        (
            'Get "https://r.example:5000/v2/": dial tcp 127.0.0.1:5000: connect: '
            "connection refused",
            RegistryUnavailable,
            None,
            (),
        ),
        (
            'Get "https://r.example:5000/v2/": dial tcp: lookup r.example: no such host',
            UnknownRegistryHost,
            None,
            (),
        ),
        ("received unexpected HTTP status: 503 Service Unavailable", RegistryUnavailable, 503, ()),
    ],
)
def test_engine_push_errors_carry_facts(
    message: str, cls: type, status: int | None, codes: tuple[str, ...]
) -> None:
    err = engine_push_error(f"r.example:5000/acme/app:latest: {message}", TARGET)
    assert type(err) is cls
    assert (err.registry, err.repository, err.action) == ("r.example:5000", "acme/app", "push")
    assert err.http_status == status and err.codes == codes


def test_engine_codes_read_the_registry_code_words() -> None:
    assert engine_codes("x:latest: name unknown: repository name not known") == ("NAME_UNKNOWN",)
    assert engine_codes("x:latest: something broke") == ()
