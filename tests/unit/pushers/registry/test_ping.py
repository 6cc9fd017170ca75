"""``GET /v2/`` (``bot.pushers.registry.ping``) on the in-memory registry: busy answers and
dropped connections are retried (announced), what is not a registry is a clear error, and a
client pings once."""

from __future__ import annotations

import ssl

import pytest
import requests

from bot.errors import RegistryError, RegistryUnavailable
from tests.fakes.registry import digest_of
from tests.unit.pushers.registry.conftest import Harness, Intercepting


def test_a_busy_ping_is_retried(anonymous: Harness) -> None:
    anonymous.registry.fail("GET", "/v2/", 502, times=1)
    with anonymous.client() as client:
        assert client.ping() == "https://registry.test"
    assert len(anonymous.registry.requests_for("GET", "/v2/")) == 2
    assert anonymous.warnings[0].startswith("registry.test answered HTTP 502")
    assert anonymous.sleeps == [1.0]


def test_a_client_pings_once_for_all_its_requests(anonymous: Harness) -> None:
    with anonymous.client() as client:
        client.blob_exists("app", digest_of(b"a"))
        client.blob_exists("app", digest_of(b"b"))
    assert len(anonymous.registry.requests_for("GET", "/v2/")) == 1
    assert len(anonymous.registry.requests_for("HEAD", "/blobs/")) == 2


def test_an_answer_that_is_not_a_registrys_is_a_step_error(anonymous: Harness) -> None:
    anonymous.registry.fail("GET", "/v2/", 404, body=b"<html>no such page</html>")
    with anonymous.client() as client, pytest.raises(RegistryError) as caught:
        client.ping()
    err = caught.value
    assert not isinstance(err, RegistryUnavailable)
    assert "registry.test does not look like a registry" in str(err)
    assert "GET https://registry.test/v2/ answered HTTP 404" in str(err)
    assert (err.registry, err.action, err.http_status) == ("registry.test", "ping", 404)
    assert anonymous.sleeps == []


def test_a_registry_busy_on_every_try_is_unavailable(anonymous: Harness) -> None:
    anonymous.registry.fail("GET", "/v2/", 503, times=10)
    with anonymous.client(attempts=3) as client, pytest.raises(RegistryUnavailable) as caught:
        client.ping()
    err = caught.value
    assert (err.registry, err.repository, err.action, err.http_status) == (
        "registry.test",
        None,
        "ping",
        503,
    )
    assert err.codes == ("UNAVAILABLE",)
    assert len(anonymous.registry.requests_for("GET", "/v2/")) == 3
    assert anonymous.sleeps == [1.0, 3.0]  # nothing is slept after the last try


def test_dropped_connections_are_retried_then_unavailable(anonymous: Harness) -> None:
    anonymous.registry.reset("GET", "/v2/", times=10)
    with anonymous.client(attempts=3) as client, pytest.raises(RegistryUnavailable) as caught:
        client.ping()
    assert (caught.value.action, caught.value.http_status) == ("ping", None)
    assert anonymous.sleeps == [1.0, 3.0]
    assert anonymous.warnings == [
        f"registry.test closed the connection; retrying in {wait} (attempt {n} of 3)"
        for wait, n in (("1 s", 2), ("3 s", 3))
    ]


def test_a_dropped_connection_then_an_answer_pings(anonymous: Harness) -> None:
    anonymous.registry.reset("GET", "/v2/", times=1)
    with anonymous.client() as client:
        assert client.ping() == "https://registry.test"
    assert anonymous.sleeps == [1.0]


def refuse_tls(method: str, url: str) -> None:
    if url.startswith("https://"):
        raise requests.exceptions.SSLError(ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER]"))


def test_tls_failures_alone_are_not_retried(anonymous: Harness) -> None:
    tls = Intercepting(anonymous.registry, before=refuse_tls)
    client = anonymous.client(transport=tls)
    with client, pytest.raises(RegistryUnavailable) as caught:
        client.ping()
    assert (caught.value.registry, caught.value.action) == ("registry.test", "ping")
    assert "TLS" in str(caught.value)
    assert anonymous.sleeps == [] and anonymous.warnings == []


def test_auto_falls_back_to_http_when_https_fails(anonymous: Harness) -> None:
    tls = Intercepting(anonymous.registry, before=refuse_tls)
    with anonymous.client(scheme="auto", transport=tls) as client:
        assert client.ping() == "http://registry.test"
        assert client.blob_exists("app", digest_of(b"x")) is False
    assert anonymous.sleeps == []
