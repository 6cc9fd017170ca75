"""Moving directories in and out of a container as tar streams."""

from __future__ import annotations

import io
import os
import tarfile
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO


def tar_directory(src: Path, spool_dir: Path) -> IO[bytes]:
    """A tar of ``src``'s contents (entries relative to it, no ``.`` entry, so extracting it
    into an existing directory keeps that directory's owner and mode), spooled to a temp
    file under ``spool_dir`` and rewound. Symlinks are stored as links, never followed."""
    spool = tempfile.TemporaryFile(dir=spool_dir)  # noqa: SIM115 - the caller closes it
    with tarfile.open(fileobj=spool, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for entry in sorted(os.listdir(src)):
            tar.add(src / entry, arcname=entry, recursive=True)
    spool.seek(0)
    return spool


class _ChunkReader(io.RawIOBase):
    """A file object over an iterator of byte chunks, so ``tarfile`` can stream it."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks: Iterator[bytes] = iter(chunks)
        self._buffer = b""

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        while not self._buffer:
            try:
                self._buffer = next(self._chunks)
            except StopIteration:
                return 0
        n = min(len(b), len(self._buffer))
        b[:n] = self._buffer[:n]
        self._buffer = self._buffer[n:]
        return n


def extract_stream(chunks: Iterable[bytes], dest: Path) -> None:
    """Extracts a tar stream into ``dest``. The ``tar`` filter refuses members that would
    land outside ``dest`` (absolute paths, ``..``, paths through symlinks) while keeping
    symlinks as they are: a source tree may hold absolute links that are fine inside an
    image."""
    reader = io.BufferedReader(_ChunkReader(chunks), buffer_size=1 << 16)
    with tarfile.open(fileobj=reader, mode="r|") as tar:
        tar.extractall(dest, filter="tar")
