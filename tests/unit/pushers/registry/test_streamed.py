"""Streamed blob uploads (``bot.pushers.registry.streamed``) on the in-memory registry: one
chunked ``PATCH`` and a closing ``PUT``; anything going wrong once the body is in flight
cancels the session, turns streaming off for the client and raises ``StreamFailed``."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from bot.errors import RegistryAuthError
from bot.pushers.registry.streamed import (
    StreamAborted,
    StreamFailed,
    range_end,
    streaming_allowed,
)
from tests.fakes.registry import digest_of
from tests.unit.pushers.registry.conftest import Harness

DATA = [b"first chunk ", b"second chunk ", b"last"]
BLOB = b"".join(DATA)


def finish(data: bytes = BLOB) -> Callable[[], tuple[str, int]]:
    return lambda: (digest_of(data), len(data))


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        ("gcr.io", False),
        ("eu.gcr.io", False),
        ("europe-docker.pkg.dev", False),
        ("us-central1-docker.pkg.dev:443", False),
        ("GCR.IO", False),
        ("notgcr.io", True),
        ("quay.io", True),
        ("registry.test:5000", True),
    ],
)
def test_hosts_known_to_refuse_patch_never_stream(host: str, allowed: bool) -> None:
    assert streaming_allowed(host) is allowed


@pytest.mark.parametrize(
    ("header", "received"), [("0-9", 10), ("bytes=0-9", 10), ("0-0", 1), ("", None), ("x", None)]
)
def test_range_end_is_the_count_of_bytes_received(header: str, received: int | None) -> None:
    assert range_end(header) == received


def test_a_streamed_blob_is_one_patch_and_a_closing_put(anonymous: Harness) -> None:
    with anonymous.client() as client:
        assert client.stream_blob("app", iter(DATA), finish()) == digest_of(BLOB)
        assert client.streaming is True
    assert anonymous.registry.blobs["app"][digest_of(BLOB)] == BLOB
    (patch,) = anonymous.registry.requests_for("PATCH", "/blobs/uploads/")
    assert patch.body == BLOB and "Content-Length" not in patch.headers
    (put,) = anonymous.registry.requests_for("PUT", "/blobs/uploads/")
    assert put.body == b"" and put.query["digest"] == [digest_of(BLOB)]


def test_a_refused_patch_fails_the_stream_and_turns_streaming_off(anonymous: Harness) -> None:
    anonymous.registry.fail("PATCH", "/blobs/uploads/", 405)
    with anonymous.client() as client:
        with pytest.raises(StreamFailed, match="PATCH answered HTTP 405"):
            client.stream_blob("app", iter(DATA), finish())
        assert client.streaming is False
    assert len(anonymous.registry.requests_for("DELETE", "/blobs/uploads/")) == 1
    assert anonymous.sleeps == []  # one attempt: the caller uploads the file instead


def test_a_size_the_registry_did_not_receive_fails_the_stream(anonymous: Harness) -> None:
    with anonymous.client() as client:
        with pytest.raises(StreamFailed, match=f"received {len(BLOB)} of {len(BLOB) + 1} bytes"):
            client.stream_blob("app", iter(DATA), finish(BLOB + b"!"))
        assert client.streaming is False
    assert anonymous.registry.requests_for("PUT") == []


def test_a_dropped_connection_fails_the_stream_without_retrying(anonymous: Harness) -> None:
    anonymous.registry.reset("PATCH", "/blobs/uploads/")
    dropped = r"^registry\.test closed the connection"
    with anonymous.client() as client, pytest.raises(StreamFailed, match=dropped):
        client.stream_blob("app", iter(DATA), finish())
    assert len(anonymous.registry.requests_for("PATCH")) == 1
    assert anonymous.sleeps == []


def test_a_failing_producer_is_a_stream_failure(anonymous: Harness) -> None:
    def chunks() -> Iterator[bytes]:
        yield b"part"
        raise StreamAborted("the layer could not be read")

    with anonymous.client() as client:
        with pytest.raises(StreamFailed, match="the layer could not be read"):
            client.stream_blob("app", chunks(), finish())
        assert client.streaming is False
    assert len(anonymous.registry.requests_for("DELETE", "/blobs/uploads/")) == 1
    assert "app" not in anonymous.registry.blobs


def test_a_refused_post_is_a_registry_error_not_a_stream_failure(anonymous: Harness) -> None:
    denied = b'{"errors": [{"code": "DENIED", "message": "requested access denied"}]}'
    anonymous.registry.fail("POST", "/blobs/uploads/", 403, body=denied)
    with anonymous.client() as client:
        with pytest.raises(RegistryAuthError) as caught:
            client.stream_blob("app", iter(DATA), finish())
        assert client.streaming is True
    assert (caught.value.action, caught.value.http_status) == ("push", 403)
