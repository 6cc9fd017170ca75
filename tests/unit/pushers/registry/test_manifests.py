"""Manifests (``bot.pushers.registry.manifests``) on the in-memory registry: read (and checked
when asked for by digest), looked up by ``HEAD``, and stored only once the registry confirmed
our digest."""

from __future__ import annotations

import pytest
import requests

from bot.errors import RegistryError
from bot.pushers.registry.image import DOCKER_MANIFEST
from bot.pushers.registry.manifests import Manifest
from tests.fakes.registry import digest_of
from tests.unit.pushers.registry.conftest import After, Harness, Intercepting

MANIFEST = b'{"schemaVersion": 2}'


def test_a_manifest_without_an_echoed_digest_is_confirmed_by_head(anonymous: Harness) -> None:
    anonymous.registry.echo_digest = False
    with anonymous.client() as client:
        assert client.put_manifest("app", "v1", MANIFEST, DOCKER_MANIFEST) == digest_of(MANIFEST)
    assert len(anonymous.registry.requests_for("HEAD", "/manifests/v1")) == 1


def test_get_manifest_returns_the_stored_bytes_type_and_digest(anonymous: Harness) -> None:
    anonymous.registry.manifests["app"] = {"v1": (MANIFEST, DOCKER_MANIFEST)}
    with anonymous.client() as client:
        manifest = client.get_manifest("app", "v1")
    assert manifest == Manifest(MANIFEST, DOCKER_MANIFEST, digest_of(MANIFEST))
    (sent,) = anonymous.registry.requests_for("GET", "/manifests/v1")
    assert DOCKER_MANIFEST in sent.headers["Accept"]


def test_a_manifest_asked_for_by_digest_must_have_that_digest(anonymous: Harness) -> None:
    asked = digest_of(MANIFEST)
    anonymous.registry.manifests["app"] = {asked: (b'{"schemaVersion": 1}', DOCKER_MANIFEST)}
    with anonymous.client() as client, pytest.raises(RegistryError) as caught:
        client.get_manifest("app", asked)
    assert str(caught.value) == f"registry.test: manifest {asked} of app is corrupt"
    assert caught.value.action == "pull"


def test_a_missing_manifest_names_the_reference(anonymous: Harness) -> None:
    with anonymous.client() as client, pytest.raises(RegistryError) as caught:
        client.get_manifest("app", "v9")
    err = caught.value
    assert (err.registry, err.repository, err.action) == ("registry.test", "app", "pull")
    assert (err.http_status, err.codes) == (404, ("MANIFEST_UNKNOWN",))
    assert "v9" in str(err)


def test_manifest_digest_is_none_for_a_missing_tag(anonymous: Harness) -> None:
    anonymous.registry.manifests["app"] = {"v1": (MANIFEST, DOCKER_MANIFEST)}
    with anonymous.client() as client:
        assert client.manifest_digest("app", "v1", DOCKER_MANIFEST) == digest_of(MANIFEST)
        assert client.manifest_digest("app", "v2", DOCKER_MANIFEST) is None
    assert anonymous.registry.requests_for("GET", "/manifests/") == []


def test_put_manifest_stores_the_exact_bytes_under_the_tag(anonymous: Harness) -> None:
    with anonymous.client() as client:
        assert client.put_manifest("app", "v1", MANIFEST, DOCKER_MANIFEST) == digest_of(MANIFEST)
    assert anonymous.registry.manifests["app"]["v1"] == (MANIFEST, DOCKER_MANIFEST)
    assert anonymous.registry.requests_for("HEAD", "/manifests/") == []  # the echo confirmed it


def with_digest(digest: str | None, method: str) -> After:
    """Answers to ``method`` on a manifest name ``digest`` (none when None), as a proxy
    rewriting or dropping ``Docker-Content-Digest`` would."""

    def after(sent: str, url: str, resp: requests.Response) -> requests.Response:
        if sent == method and "/manifests/" in url:
            resp.headers.pop("Docker-Content-Digest", None)
            if digest is not None:
                resp.headers["Docker-Content-Digest"] = digest
        return resp

    return after


def test_an_echoed_digest_that_is_not_ours_fails_the_push(anonymous: Harness) -> None:
    other = digest_of(b"changed")
    proxy = Intercepting(anonymous.registry, after=with_digest(other, "PUT"))
    with anonymous.client(transport=proxy) as client, pytest.raises(RegistryError) as caught:
        client.put_manifest("app", "v1", MANIFEST, DOCKER_MANIFEST)
    assert str(caught.value) == (
        f"registry.test stored app:v1 as {other}, but the manifest we sent is "
        f"{digest_of(MANIFEST)}; the registry or a proxy changed it"
    )
    assert (caught.value.action, caught.value.http_status) == ("push", 201)


def test_a_head_naming_another_digest_fails_the_push(anonymous: Harness) -> None:
    anonymous.registry.echo_digest = False
    other = digest_of(b"changed")
    proxy = Intercepting(anonymous.registry, after=with_digest(other, "HEAD"))
    with anonymous.client(transport=proxy) as client, pytest.raises(RegistryError) as caught:
        client.put_manifest("app", "v1", MANIFEST, DOCKER_MANIFEST)
    assert f"HEAD says the tag is {other}" in str(caught.value)
    assert anonymous.sleeps == []


def test_a_digest_named_nowhere_is_asked_for_three_times_then_fails(anonymous: Harness) -> None:
    anonymous.registry.echo_digest = False
    proxy = Intercepting(anonymous.registry, after=with_digest(None, "HEAD"))
    with anonymous.client(transport=proxy) as client, pytest.raises(RegistryError) as caught:
        client.put_manifest("app", "v1", MANIFEST, DOCKER_MANIFEST)
    assert "the registry named no digest" in str(caught.value)
    assert caught.value.repository == "app"
    assert len(anonymous.registry.requests_for("HEAD", "/manifests/v1")) == 3
    assert anonymous.sleeps == [1.0, 3.0]
    assert anonymous.warnings[0] == (
        "registry.test named no digest for app:v1 yet (HEAD); asking again in 1 s (attempt 2 of 3)"
    )
