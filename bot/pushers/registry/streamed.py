"""Streaming upload (a layer still being compressed, digest known only at the end).

``POST`` → one ``PATCH`` carrying the bytes as they are produced, with chunked transfer
encoding (no ``Content-Length``, no ``Content-Range``) → empty ``PUT ?digest=``. That is what
docker, podman and skopeo send (registry-push.md §1.3), so distribution, Docker Hub, ECR
(one part, whatever its size), ghcr.io, Quay and JFrog take it. It is one attempt: any
failure (a refusal such as 405/411 Length Required/415/501, a dropped connection, a lost
session, an expired token) cancels the session, turns streaming off for the rest of the
client's push, and the caller uploads the finished temp file with ``upload_blob`` (retries,
Content-Length). Hosts known to refuse PATCH (Google Artifact Registry and gcr.io, which AR
now serves) never try it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

import requests

from bot.pushers.registry.errors import describe_body
from bot.pushers.registry.transport import TRANSPORT_ERRORS
from bot.pushers.registry.transport_errors import transport_problem
from bot.pushers.registry.uploads import cancel, close_upload, location_of, start_upload
from bot.pushers.target import split_host_port

if TYPE_CHECKING:
    from bot.pushers.registry.client import RegistryClient

# Google Artifact Registry (and gcr.io, served by it): monolithic uploads only.
NO_PATCH_HOSTS = re.compile(r"(^|\.)gcr\.io$|(^|[.-])docker\.pkg\.dev$")
PATCH_OK = (201, 202, 204)  # ECR answers a PATCH with 201


class StreamAborted(Exception):
    """Raised by a streamed body's producer side: the blob must not be completed."""


class StreamFailed(Exception):
    """A streaming upload did not complete; the caller uploads from its file instead."""


def streaming_allowed(host: str) -> bool:
    """Whether a registry host may get a streamed PATCH (see the module docstring)."""
    return not NO_PATCH_HOSTS.search(split_host_port(host)[0].lower())


def range_end(value: str) -> int | None:
    """Bytes received according to a ``Range: 0-<last>`` (or ``bytes=0-<last>``) header."""
    _, _, last = value.removeprefix("bytes=").partition("-")
    try:
        return int(last) + 1
    except ValueError:
        return None


def stream_blob(
    client: RegistryClient,
    repository: str,
    chunks: Iterable[bytes],
    finish: Callable[[], tuple[str, int]],
) -> str:
    """Uploads a blob while it is produced: ``POST``, one ``PATCH`` sending ``chunks``
    as they come (chunked transfer encoding), then ``PUT ?digest=`` with the digest
    ``finish()`` returns once ``chunks`` is exhausted (with the size, checked against the
    ``Range`` the registry reports). Returns the digest.

    One attempt, no retry: a registry error on ``POST`` is raised as usual; anything that
    goes wrong once the body is in flight cancels the session, turns ``streaming`` off
    for this client and raises ``StreamFailed`` (upload the finished file instead)."""
    started = start_upload(client, repository, None, None)
    assert started is not None
    # The session's URL as the registry last named it: the one to cancel.
    location = [started]
    try:
        return _stream_into(client, location, repository, chunks, finish)
    except StreamFailed:
        client.streaming = False
        cancel(client, location[0], repository)
        raise
    except StreamAborted as err:  # the producer failed: its own error follows
        client.streaming = False
        cancel(client, location[0], repository)
        raise StreamFailed(str(err)) from None
    except BaseException:
        cancel(client, location[0], repository)
        raise


def _stream_into(
    client: RegistryClient,
    location: list[str],
    repository: str,
    chunks: Iterable[bytes],
    finish: Callable[[], tuple[str, int]],
) -> str:
    """The ``PATCH`` and the closing ``PUT`` of ``stream_blob``; ``StreamFailed`` says why
    they did not store the blob. ``location[0]`` follows the session's URL."""
    resp = _once(
        client,
        repository,
        lambda: client.as_pusher(
            "PATCH",
            location[0],
            repository,
            body=chunks,
            headers={"Content-Type": "application/octet-stream"},
            retry=False,
            reauth=False,
        ),
    )
    if resp.status_code not in PATCH_OK:
        raise StreamFailed(f"PATCH answered HTTP {resp.status_code}: {describe_body(resp)}")
    digest, size = finish()
    received = range_end(resp.headers.get("Range", ""))
    if received is not None and received != size:
        raise StreamFailed(f"the registry received {received} of {size} bytes")
    if resp.headers.get("Location"):
        location[0] = location_of(client, resp)
    resp = _once(
        client,
        repository,
        lambda: close_upload(client, location[0], digest, repository, once=True),
    )
    if resp.status_code != 201:
        raise StreamFailed(f"PUT answered HTTP {resp.status_code}: {describe_body(resp)}")
    return digest


def _once(
    client: RegistryClient, repository: str, send: Callable[[], requests.Response]
) -> requests.Response:
    """``send()``, with a transport error turned into ``StreamFailed``."""
    try:
        return send()
    except TRANSPORT_ERRORS as err:
        raise StreamFailed(
            transport_problem(client.name, err, action="push to", repository=repository)
        ) from None
