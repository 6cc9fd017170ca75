"""``bot.pushers.registry.auth``: which credentials a registry gets, which token realms
are trusted, and ``RegistryClient``'s auth paths on the in-memory registry: Basic, a Bearer
challenge answered with the push's scopes, a token refreshed after a 401 mid-push, and wrong
credentials as a clear error naming the registry (never the password)."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator

import pytest

from bot.errors import RegistryAuthError
from bot.pushers.model import RegistryAuth
from bot.pushers.registry.auth import check_realm, credentials_for, push_scope
from bot.pushers.registry.endpoint import resolve_endpoint
from bot.pushers.registry.image import DOCKER_MANIFEST
from tests.fakes.registry import FakeRegistry, digest_of
from tests.unit.pushers.registry.conftest import Harness

ROBOT = RegistryAuth(username="robot", password="s3cret-pass")


WRONG = RegistryAuth(username="robot", password="not-the-password")


MANIFEST = b'{"schemaVersion": 2}'


@contextlib.contextmanager
def body(data: bytes) -> Iterator[io.BytesIO]:
    yield io.BytesIO(data)


def test_anonymous_requests_carry_no_authorization(anonymous: Harness) -> None:
    with anonymous.client() as client:
        client.put_manifest("app", "v1", MANIFEST, DOCKER_MANIFEST)
    assert all(not sent.authorization for sent in anonymous.registry.sent)


def test_basic_credentials_go_on_every_request_after_the_challenge() -> None:
    harness = Harness(FakeRegistry(auth="basic"))
    with harness.client(ROBOT) as client:
        client.put_manifest("app", "v1", MANIFEST, DOCKER_MANIFEST)
    ping, *rest = harness.registry.sent
    assert ping.path == "/v2/" and not ping.authorization
    assert rest and all(s.authorization.startswith("Basic ") for s in rest)
    assert harness.registry.token_requests == []


def test_a_wrong_basic_password_is_a_clear_error_naming_the_registry() -> None:
    harness = Harness(FakeRegistry(auth="basic"))
    with harness.client(WRONG) as client, pytest.raises(RegistryAuthError) as caught:
        client.put_manifest("app", "v1", MANIFEST, DOCKER_MANIFEST)
    err = caught.value
    assert (err.registry, err.repository, err.http_status) == ("registry.test", "app", 401)
    assert "registry.test" in str(err) and "robot" in str(err)
    assert "not-the-password" not in str(err)
    assert harness.sleeps == []  # a refused password does not get better by waiting


def test_a_bearer_challenge_is_answered_with_the_push_scope_in_one_exchange() -> None:
    harness = Harness(FakeRegistry(auth="bearer"))
    with harness.client(ROBOT) as client:
        client.ping()
        client.auth.want([push_scope("team/app")])
        client.put_manifest("team/app", "v1", MANIFEST, DOCKER_MANIFEST)
        client.manifest_digest("team/app", "v1", DOCKER_MANIFEST)
    (token,) = harness.registry.token_requests
    assert token.query["service"] == ["registry.test"]
    assert token.query["scope"] == ["repository:team/app:pull,push"]
    assert token.authorization.startswith("Basic ")
    later = [s for s in harness.registry.sent if s.path.startswith("/v2/team/app/")]
    assert later and all(s.authorization.startswith("Bearer ") for s in later)


def test_a_token_expired_mid_push_is_refreshed_and_the_push_goes_on() -> None:
    harness = Harness(FakeRegistry(auth="bearer"))
    data = b"layer bytes"
    harness.registry.expire_tokens_on("PUT", "/blobs/uploads/")
    with harness.client(ROBOT) as client:
        outcome = client.upload_blob("app", digest_of(data), len(data), lambda: body(data))
    assert outcome == "uploaded"
    assert harness.registry.blobs["app"][digest_of(data)] == data
    assert len(harness.registry.token_requests) == 2
    assert harness.sleeps == []  # a refreshed token is tried at once
    assert any(
        "refused our token for PUT /v2/app/blobs/uploads/" in w
        and "authenticating again and retrying at once" in w
        for w in harness.warnings
    )


def test_a_wrong_password_at_the_token_service_names_registry_and_user() -> None:
    harness = Harness(FakeRegistry(auth="bearer"))
    with harness.client(WRONG) as client, pytest.raises(RegistryAuthError) as caught:
        client.put_manifest("app", "v1", MANIFEST, DOCKER_MANIFEST)
    err = caught.value
    assert (err.registry, err.action, err.http_status) == ("registry.test", "auth", 401)
    assert str(err).startswith("registry.test rejected the credentials (user 'robot')")
    assert "incorrect username or password" in str(err)
    assert "not-the-password" not in str(err)
    assert harness.registry.requests_for("PUT") == []


def test_anonymous_bearer_gets_a_pull_token(anonymous: Harness) -> None:
    harness = Harness(FakeRegistry(auth="bearer"))
    harness.registry.manifests["library/busybox"] = {"latest": (MANIFEST, DOCKER_MANIFEST)}
    with harness.client() as client:
        assert client.get_manifest("library/busybox", "latest").body == MANIFEST
    (token,) = harness.registry.token_requests
    assert not token.authorization
    assert token.query["scope"] == ["repository:library/busybox:pull"]


@pytest.mark.parametrize(
    ("realm", "registry", "ok"),
    [
        ("https://auth.docker.io/token", "https://registry-1.docker.io", True),
        ("https://quay.io/v2/auth", "https://quay.io", True),
        ("https://gcr.io/v2/token", "https://gcr.io", True),
        ("http://auth.docker.io/token", "https://registry-1.docker.io", False),
        ("https://evil.example.net/token", "https://registry.example.com", False),
        ("https://169.254.169.254/latest", "https://registry.example.com", False),
        ("https://10.0.0.5/token", "https://registry.example.com", False),
        ("https://127.0.0.1:9999/token", "https://127.0.0.1:5000", True),
        ("http://127.0.0.1:9999/token", "http://127.0.0.1:5000", True),
        ("file:///etc/passwd", "https://registry.example.com", False),
    ],
)
def test_check_realm(realm: str, registry: str, ok: bool) -> None:
    assert (check_realm(realm, registry) is None) is ok


def test_gcr_json_key_gets_real_newlines_only_on_gcr_hosts() -> None:
    key = '{"private_key": "-----BEGIN KEY-----\\nABC\\n-----END KEY-----\\n"}'
    auth = RegistryAuth(username="_json_key", password=key)
    for host in ("gcr.io", "eu.gcr.io"):
        creds = credentials_for(resolve_endpoint(host, "https", {}), auth)
        assert "\\n" not in creds.password and "\nABC\n" in creds.password
    other = credentials_for(resolve_endpoint("quay.io", "https", {}), auth)
    assert other.password == key


def test_azure_service_principal_is_basic() -> None:
    auth = RegistryAuth(
        azure_client_id="cid", azure_client_secret="csecret", azure_login_server="acme.azurecr.io"
    )
    creds = credentials_for(resolve_endpoint("acme.azurecr.io", "https", {}), auth)
    assert (creds.username, creds.password) == ("cid", "csecret")
