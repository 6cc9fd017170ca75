"""Blob uploads (``bot.pushers.registry.uploads``) on the in-memory registry: skipped when the
blob exists, mounted when another repository has it, restarted from ``POST`` when anything
fails in flight, switched to ``PATCH`` when ``PUT`` refuses a body, and given up with facts."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator

import pytest

from bot.errors import RegistryAuthError, RegistryError, RegistryUnavailable
from bot.pushers.registry.uploads import BodyOpener
from tests.fakes.registry import digest_of
from tests.unit.pushers.registry.conftest import Harness


def opener(data: bytes) -> BodyOpener:
    """Opens a fresh body of ``data`` for every try."""

    @contextlib.contextmanager
    def open_() -> Iterator[io.BytesIO]:
        yield io.BytesIO(data)

    return open_


def test_an_upload_failing_in_flight_starts_again_from_post(anonymous: Harness) -> None:
    data = b"layer bytes"
    digest = digest_of(data)
    anonymous.registry.fail("PUT", "/blobs/uploads/", 503, retry_after="1")
    with anonymous.client() as client:
        assert client.upload_blob("app", digest, len(data), opener(data)) == "uploaded"
    assert anonymous.registry.blobs["app"][digest] == data
    assert len(anonymous.registry.requests_for("POST", "/blobs/uploads/")) == 2
    # the failed session is cancelled before the new one starts
    assert len(anonymous.registry.requests_for("DELETE", "/blobs/uploads/")) == 1
    assert anonymous.sleeps == [1.0]
    assert (
        "uploading it again from the start in 1 s, as its Retry-After asks"
        in (anonymous.warnings[0])
    )


def test_an_upload_that_never_gets_through_names_its_tries(anonymous: Harness) -> None:
    data = b"layer bytes"
    anonymous.registry.reset("PUT", "/blobs/uploads/", times=10)
    with anonymous.client(attempts=2) as client, pytest.raises(RegistryUnavailable) as caught:
        client.upload_blob("app", digest_of(data), len(data), opener(data))
    assert "did not upload after 2 tries" in str(caught.value)
    assert (caught.value.repository, caught.value.action) == ("app", "push")
    assert anonymous.sleeps == [1.0]


def test_a_put_refused_with_405_switches_to_patch(anonymous: Harness) -> None:
    data = b"layer bytes"
    anonymous.registry.fail("PUT", "/blobs/uploads/", 405)
    with anonymous.client() as client:
        assert client.upload_blob("app", digest_of(data), len(data), opener(data)) == "uploaded"
        assert client.upload_mode == "patch"
    assert len(anonymous.registry.requests_for("PATCH", "/blobs/uploads/")) == 1
    assert anonymous.registry.blobs["app"][digest_of(data)] == data


def test_a_mount_from_another_repository_uploads_nothing(anonymous: Harness) -> None:
    data = b"base layer"
    anonymous.registry.blobs["base"] = {digest_of(data): data}
    with anonymous.client() as client:
        outcome = client.upload_blob(
            "app", digest_of(data), len(data), opener(data), mount_from="base"
        )
    assert outcome == "mounted"
    assert anonymous.registry.requests_for("PUT") == []


def test_a_blob_the_repository_has_is_not_uploaded(anonymous: Harness) -> None:
    data = b"layer bytes"
    anonymous.registry.blobs["app"] = {digest_of(data): data}
    with anonymous.client() as client:
        assert client.upload_blob("app", digest_of(data), len(data), opener(data)) == "exists"
    assert anonymous.registry.requests_for("POST") == []


def test_a_mount_the_registry_will_not_do_uploads_instead(anonymous: Harness) -> None:
    data = b"base layer"
    with anonymous.client() as client:
        outcome = client.upload_blob(
            "app", digest_of(data), len(data), opener(data), mount_from="base"
        )
    assert outcome == "uploaded"
    (post,) = anonymous.registry.requests_for("POST", "/blobs/uploads/")
    assert post.query == {"mount": [digest_of(data)], "from": ["base"]}
    assert anonymous.registry.blobs["app"][digest_of(data)] == data


def test_a_lost_upload_session_starts_again_after_the_backoff(anonymous: Harness) -> None:
    data = b"layer bytes"
    lost = b'{"errors": [{"code": "BLOB_UPLOAD_UNKNOWN", "message": "blob upload unknown"}]}'
    anonymous.registry.fail("PUT", "/blobs/uploads/", 404, body=lost)
    with anonymous.client() as client:
        assert client.upload_blob("app", digest_of(data), len(data), opener(data)) == "uploaded"
    assert anonymous.sleeps == [1.0]
    assert anonymous.warnings == [
        f"upload of blob {digest_of(data)[:19]}… to app failed: registry.test lost the upload "
        "session (HTTP 404 BLOB_UPLOAD_UNKNOWN); uploading it again from the start in 1 s "
        "(attempt 2 of 4)"
    ]
    assert len(anonymous.registry.requests_for("POST", "/blobs/uploads/")) == 2


def test_a_refused_upload_is_not_retried_and_names_its_facts(anonymous: Harness) -> None:
    data = b"layer bytes"
    denied = b'{"errors": [{"code": "DENIED", "message": "requested access denied"}]}'
    anonymous.registry.fail("PUT", "/blobs/uploads/", 403, body=denied)
    with anonymous.client() as client, pytest.raises(RegistryAuthError) as caught:
        client.upload_blob("team/app", digest_of(data), len(data), opener(data))
    err = caught.value
    assert (err.registry, err.repository, err.action) == ("registry.test", "team/app", "push")
    assert (err.http_status, err.codes) == (403, ("DENIED",))
    assert anonymous.sleeps == []
    assert len(anonymous.registry.requests_for("POST", "/blobs/uploads/")) == 1
    # the refused session is cancelled
    assert len(anonymous.registry.requests_for("DELETE", "/blobs/uploads/")) == 1


def test_an_upload_busy_on_every_try_gives_up_with_the_last_status(anonymous: Harness) -> None:
    data = b"layer bytes"
    anonymous.registry.fail("PUT", "/blobs/uploads/", 503, times=10)
    with anonymous.client(attempts=3) as client, pytest.raises(RegistryUnavailable) as caught:
        client.upload_blob("app", digest_of(data), len(data), opener(data))
    err = caught.value
    assert (err.registry, err.repository, err.action, err.http_status) == (
        "registry.test",
        "app",
        "push",
        503,
    )
    assert "did not upload after 3 tries (registry.test answered HTTP 503" in str(err)
    assert anonymous.sleeps == [1.0, 3.0]


def test_a_wrong_digest_is_refused_without_retrying(anonymous: Harness) -> None:
    data = b"layer bytes"
    with anonymous.client() as client, pytest.raises(RegistryError) as caught:
        client.upload_blob("app", digest_of(b"other bytes"), len(data), opener(data))
    assert caught.value.codes == ("DIGEST_INVALID",)
    assert (caught.value.http_status, caught.value.action) == (400, "push")
    assert anonymous.sleeps == []
    assert "app" not in anonymous.registry.blobs
