"""Reading blobs from a registry: whether one exists, a small one whole (checked against its
digest), or a large one as a stream of known length."""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

from bot.errors import RegistryError

if TYPE_CHECKING:
    from bot.pushers.registry.client import RegistryClient


class SizedStream:
    """A read-once body of known length: ``requests`` sends it with ``Content-Length``
    instead of chunked encoding. Used to pipe a blob GET into an upload."""

    def __init__(self, chunks: Iterator[bytes], length: int) -> None:
        self._chunks = chunks
        self._buffer = b""
        self.len = length

    def __len__(self) -> int:
        return self.len

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self._buffer) < size:
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            self._buffer += chunk
        if size < 0:
            out, self._buffer = self._buffer, b""
        else:
            out, self._buffer = self._buffer[:size], self._buffer[size:]
        return out

    def __iter__(self) -> Iterator[bytes]:
        while True:
            block = self.read(1 << 20)
            if not block:
                return
            yield block


def blob_exists(client: RegistryClient, repository: str, digest: str) -> bool:
    """``HEAD`` the blob (with push rights: the upload that follows needs them anyway)."""
    resp = client.as_pusher("HEAD", client.url(f"{repository}/blobs/{digest}"), repository)
    if resp.status_code == 200:
        return True
    if resp.status_code == 404:
        return False
    raise client.fail(resp, "push to", repository)


def get_blob(client: RegistryClient, repository: str, digest: str, limit: int = 64 << 20) -> bytes:
    """A small blob (a config), read whole and checked against ``digest``."""
    resp = client.as_puller(
        "GET", client.url(f"{repository}/blobs/{digest}"), repository, stream=True
    )
    if resp.status_code != 200:
        raise client.fail(resp, "pull from", repository)
    data = resp.raw.read(limit + 1, decode_content=True)
    resp.close()
    if len(data) > limit:
        raise RegistryError(
            f"{client.name}: blob {digest} in {repository} is too large",
            registry=client.name,
            repository=repository,
            action="pull",
        )
    if "sha256:" + hashlib.sha256(data).hexdigest() != digest:
        raise RegistryError(
            f"{client.name}: blob {digest} in {repository} is corrupt",
            registry=client.name,
            repository=repository,
            action="pull",
        )
    return bytes(data)


@contextlib.contextmanager
def open_blob(
    client: RegistryClient, repository: str, digest: str, size: int
) -> Iterator[SizedStream]:
    """Streams a blob (constant memory) as a ``SizedStream`` of ``size`` bytes."""
    resp = client.as_puller(
        "GET", client.url(f"{repository}/blobs/{digest}"), repository, stream=True
    )
    try:
        if resp.status_code != 200:
            raise client.fail(resp, "pull from", repository)
        yield SizedStream(resp.iter_content(1 << 20), size)
    finally:
        resp.close()
