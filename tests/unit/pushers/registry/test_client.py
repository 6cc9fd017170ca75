"""``RegistryClient``'s request path on the in-memory registry: how many tries, the wait each
retry line announces and why, and the error it gives up with. No sleeping: the client's
``sleep`` only records."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime

import pytest

from bot.errors import RegistryError, RegistryUnavailable
from bot.pushers.registry.image import DOCKER_MANIFEST
from tests.fakes.registry import digest_of
from tests.unit.pushers.registry.conftest import NOW, Harness

MANIFEST = b'{"schemaVersion": 2}'


def test_503_with_retry_after_waits_what_it_asks_then_succeeds(anonymous: Harness) -> None:
    anonymous.registry.fail("PUT", "/manifests/v1", 503, times=2, retry_after="2")
    with anonymous.client() as client:
        digest = client.put_manifest("app", "v1", MANIFEST, DOCKER_MANIFEST)
    assert digest == digest_of(MANIFEST)
    assert len(anonymous.registry.requests_for("PUT", "/manifests/v1")) == 3
    assert anonymous.sleeps == [2.0, 2.0]
    assert anonymous.warnings == [
        "registry.test answered HTTP 503 (UNAVAILABLE: service unavailable) to PUT "
        f"/v2/app/manifests/v1; retrying in 2 s, as its Retry-After asks (attempt {n} of 4)"
        for n in (2, 3)
    ]


def test_retry_after_as_a_date_is_measured_on_the_clock(anonymous: Harness) -> None:
    when = format_datetime(datetime.fromtimestamp(NOW + 7, UTC), usegmt=True)
    anonymous.registry.fail("GET", "/manifests/v1", 503, retry_after=when)
    anonymous.registry.manifests["app"] = {"v1": (MANIFEST, DOCKER_MANIFEST)}
    with anonymous.client() as client:
        client.get_manifest("app", "v1")
    assert anonymous.sleeps == [7.0]


def test_429_without_retry_after_backs_off_exponentially(anonymous: Harness) -> None:
    anonymous.registry.fail("HEAD", "/blobs/", 429, times=3)
    with anonymous.client() as client:
        assert client.blob_exists("app", digest_of(b"x")) is False
    assert anonymous.sleeps == [1.0, 3.0, 9.0]
    assert [w.rsplit("; ", 1)[1] for w in anonymous.warnings] == [
        "retrying in 1 s (attempt 2 of 4)",
        "retrying in 3 s (attempt 3 of 4)",
        "retrying in 9 s (attempt 4 of 4)",
    ]


def test_a_retry_after_beyond_the_cap_is_cut_and_the_line_says_so(anonymous: Harness) -> None:
    anonymous.registry.fail("HEAD", "/blobs/", 503, retry_after="600")
    with anonymous.client() as client:
        client.blob_exists("app", digest_of(b"x"))
    assert anonymous.sleeps == [60.0]
    assert anonymous.warnings[0].endswith(
        "retrying in 60 s (its Retry-After asked for 600 s; we wait at most 60 s) (attempt 2 of 4)"
    )


def test_giving_up_raises_a_registry_problem_with_its_facts(anonymous: Harness) -> None:
    body = b'{"errors": [{"code": "UNAVAILABLE", "message": "overloaded"}]}'
    anonymous.registry.fail("PUT", "/manifests/v1", 503, times=10, body=body)
    with anonymous.client(attempts=3) as client, pytest.raises(RegistryUnavailable) as caught:
        client.put_manifest("team/app", "v1", MANIFEST, DOCKER_MANIFEST)
    err = caught.value
    assert (err.registry, err.repository, err.action) == ("registry.test", "team/app", "push")
    assert err.http_status == 503
    assert err.codes == ("UNAVAILABLE",)
    assert len(anonymous.registry.requests_for("PUT", "/manifests/v1")) == 3
    assert anonymous.sleeps == [1.0, 3.0]  # nothing is slept after the last try


def test_a_refusal_is_not_retried(anonymous: Harness) -> None:
    body = b'{"errors": [{"code": "MANIFEST_INVALID", "message": "bad"}]}'
    anonymous.registry.fail("PUT", "/manifests/v1", 400, body=body)
    with anonymous.client() as client, pytest.raises(RegistryError) as caught:
        client.put_manifest("app", "v1", MANIFEST, DOCKER_MANIFEST)
    assert not isinstance(caught.value, RegistryUnavailable)
    assert caught.value.codes == ("MANIFEST_INVALID",)
    assert anonymous.sleeps == []


def test_a_connection_reset_is_retried_and_named(anonymous: Harness) -> None:
    anonymous.registry.manifests["app"] = {"v1": (MANIFEST, DOCKER_MANIFEST)}
    anonymous.registry.reset("GET", "/manifests/v1", times=2)
    with anonymous.client() as client:
        assert client.get_manifest("app", "v1").body == MANIFEST
    assert anonymous.sleeps == [1.0, 3.0]
    assert anonymous.warnings[0] == (
        "registry.test closed the connection (GET /v2/app/manifests/v1); retrying in 1 s "
        "(attempt 2 of 4)"
    )


def test_connection_resets_outlasting_the_retries_are_unavailable(anonymous: Harness) -> None:
    anonymous.registry.reset("GET", "/manifests/v1", times=10)
    with anonymous.client(attempts=2) as client, pytest.raises(RegistryUnavailable) as caught:
        client.get_manifest("app", "v1")
    err = caught.value
    assert (err.registry, err.repository, err.action, err.http_status) == (
        "registry.test",
        "app",
        "pull",
        None,
    )
    assert "closed the connection while trying to pull from app" in str(err)
    assert anonymous.sleeps == [1.0]
