"""Reading blobs (``bot.pushers.registry.blobs``) on the in-memory registry: whether one
exists, a small one whole and checked against its digest, a large one streamed with its
length, and the errors (with their facts) when the registry refuses or sends the wrong bytes."""

from __future__ import annotations

import pytest

from bot.errors import RegistryAuthError, RegistryError, RegistryUnavailable
from bot.pushers.registry.blobs import SizedStream
from tests.fakes.registry import digest_of
from tests.unit.pushers.registry.conftest import Harness

DATA = b'{"architecture": "amd64"}'
DENIED = b'{"errors": [{"code": "DENIED", "message": "requested access denied"}]}'


def test_blob_exists_asks_with_head(anonymous: Harness) -> None:
    anonymous.registry.blobs["app"] = {digest_of(DATA): DATA}
    with anonymous.client() as client:
        assert client.blob_exists("app", digest_of(DATA)) is True
        assert client.blob_exists("app", digest_of(b"missing")) is False
        assert client.blob_exists("other", digest_of(DATA)) is False
    assert len(anonymous.registry.requests_for("HEAD", "/blobs/")) == 3
    assert anonymous.registry.requests_for("GET", "/blobs/") == []


def test_a_refused_head_is_an_auth_error_with_facts(anonymous: Harness) -> None:
    anonymous.registry.fail("HEAD", "/blobs/", 403, body=DENIED)
    with anonymous.client() as client, pytest.raises(RegistryAuthError) as caught:
        client.blob_exists("team/app", digest_of(DATA))
    err = caught.value
    assert (err.registry, err.repository, err.action) == ("registry.test", "team/app", "push")
    assert (err.http_status, err.codes) == (403, ("DENIED",))


def test_get_blob_reads_it_whole(anonymous: Harness) -> None:
    anonymous.registry.blobs["app"] = {digest_of(DATA): DATA}
    with anonymous.client() as client:
        assert client.get_blob("app", digest_of(DATA)) == DATA


def test_a_blob_whose_bytes_are_not_its_digest_is_corrupt(anonymous: Harness) -> None:
    digest = digest_of(DATA)
    anonymous.registry.blobs["app"] = {digest: b"tampered"}
    with anonymous.client() as client, pytest.raises(RegistryError) as caught:
        client.get_blob("app", digest)
    assert str(caught.value) == f"registry.test: blob {digest} in app is corrupt"
    assert (caught.value.repository, caught.value.action) == ("app", "pull")


def test_a_blob_over_the_limit_is_refused(anonymous: Harness) -> None:
    anonymous.registry.blobs["app"] = {digest_of(DATA): DATA}
    with anonymous.client() as client, pytest.raises(RegistryError, match="too large"):
        client.get_blob("app", digest_of(DATA), limit=len(DATA) - 1)
    with anonymous.client() as client:
        assert client.get_blob("app", digest_of(DATA), limit=len(DATA)) == DATA


def test_a_missing_blob_is_a_pull_error_with_its_code(anonymous: Harness) -> None:
    with anonymous.client() as client, pytest.raises(RegistryError) as caught:
        client.get_blob("app", digest_of(DATA))
    err = caught.value
    assert not isinstance(err, RegistryUnavailable)
    assert (err.registry, err.repository, err.action) == ("registry.test", "app", "pull")
    assert (err.http_status, err.codes) == (404, ("BLOB_UNKNOWN",))


def test_a_busy_blob_read_is_retried(anonymous: Harness) -> None:
    anonymous.registry.blobs["app"] = {digest_of(DATA): DATA}
    anonymous.registry.fail("GET", "/blobs/", 503, retry_after="2")
    with anonymous.client() as client:
        assert client.get_blob("app", digest_of(DATA)) == DATA
    assert anonymous.sleeps == [2.0]


def test_open_blob_streams_it_with_its_length(anonymous: Harness) -> None:
    data = bytes(range(256)) * 10
    anonymous.registry.blobs["app"] = {digest_of(data): data}
    with anonymous.client() as client, client.open_blob("app", digest_of(data), len(data)) as body:
        assert len(body) == len(data)
        assert body.read(10) == data[:10]
        assert body.read() == data[10:]
        assert body.read() == b""


def test_open_blob_of_a_missing_blob_raises_before_anything_is_read(anonymous: Harness) -> None:
    with (
        anonymous.client() as client,
        pytest.raises(RegistryError) as caught,
        client.open_blob("app", digest_of(DATA), len(DATA)),
    ):
        pytest.fail("a missing blob gave a body")
    assert caught.value.codes == ("BLOB_UNKNOWN",)


def test_a_sized_stream_reads_across_chunks_and_iterates_in_blocks() -> None:
    stream = SizedStream(iter([b"abc", b"", b"defg", b"h"]), 8)
    assert len(stream) == 8
    assert stream.read(2) == b"ab"
    assert stream.read(4) == b"cdef"
    assert stream.read(100) == b"gh"
    assert stream.read(1) == b""
    assert list(SizedStream(iter([b"x" * 3, b"y" * 2]), 5)) == [b"xxxyy"]
