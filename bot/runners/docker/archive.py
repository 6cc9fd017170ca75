"""Moving directories in and out of a container as tar streams.

What comes out of a box is hostile: the box decides every name, type and link in it. The
bot extracts it into a directory it created itself, never through a symlink and never as a
device node or fifo (``extract_stream``), and only up to ``MAX_COLLECT_BYTES``, so a box
cannot fill the host's disk through what it leaves in ``/pipeline/output``."""

from __future__ import annotations

import contextlib
import copy
import io
import os
import shutil
import stat
import tarfile
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path, PurePosixPath
from typing import IO, Any
from urllib.parse import quote

import requests
from docker.errors import create_api_error_from_http_exception

ARCHIVE_CHUNK = 1 << 20
"""How much of an archive coming out of a box is read at a time."""

MAX_COLLECT_BYTES = 8 << 30
"""The most one copy out of a box may hold: the sizes of its files plus a tar header
(``tarfile.BLOCKSIZE``) for each entry, so that a myriad of empty files counts too."""


class ArchiveTooLargeError(Exception):
    """A directory copied out of a box holds more than the limit; nothing of it is kept."""

    def __init__(self, label: str, limit: int) -> None:
        size = _size(limit)
        super().__init__(
            f"{label} holds more than {size}; the limit is {size} per directory copied out "
            "of the box, and nothing of it was kept"
        )
        self.limit = limit


def _size(n: int) -> str:
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if n >= 1 << shift and n % (1 << shift) == 0:
            return f"{n >> shift} {unit}"
    return f"{n} bytes"


class UnsafeArchiveError(tarfile.FilterError):
    """A member would be written outside the destination or through a link."""

    def __init__(self, member: tarfile.TarInfo, reason: str) -> None:
        super().__init__(f"{member.name!r} {reason}")
        self.tarinfo = member


@contextlib.contextmanager
def archive_of(api: Any, container: str, path: str) -> Iterator[Iterator[bytes]]:
    """The tar the engine makes of ``path`` in ``container``, as chunks: what
    ``APIClient.get_archive`` asks for (``GET /containers/{id}/archive``), but its response
    is closed on leaving the block, read to the end or not. docker-py's ``get_archive``
    hands out the chunks without the response, so an archive refused midway (too large, a
    member the bot refuses) would keep its socket open until garbage collection. ``api``
    is a docker ``APIClient``. Raises ``docker.errors.NotFound`` when ``path`` does not
    exist in the container, another ``DockerException`` when the engine refuses."""
    url = f"{api.base_url}/v{api.api_version}/containers/{quote(container, safe='')}/archive"
    response = api.get(
        url,
        params={"path": path},
        headers={"Accept-Encoding": "identity"},
        stream=True,
        timeout=api.timeout,
    )
    try:
        try:
            response.raise_for_status()
        except requests.HTTPError as err:
            raise create_api_error_from_http_exception(err) from None
        yield response.iter_content(ARCHIVE_CHUNK)
    finally:
        response.close()


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


def extract_stream(
    chunks: Iterable[bytes],
    dest: Path,
    top: str,
    warn: Callable[[str], None],
    label: str = "",
    max_bytes: int = MAX_COLLECT_BYTES,
) -> Path:
    """Extracts the archive of one directory (as the engine's ``get_archive`` makes it: a
    ``top`` entry, then ``top/...``) into ``dest`` and returns ``dest / top``.

    ``dest / top`` is created here, before anything is extracted, so what is returned is
    always a directory the bot made, whatever the archive holds. Symlinks stay symlinks.
    ``label`` names the directory in warnings (default: ``top``).
    Skipped, with a ``warn`` line each: a ``top`` entry that is not a directory (a box that
    replaced the directory with a symlink: it is not followed, the result is empty), device
    nodes, fifos and other special files. Refused (``UnsafeArchiveError`` or another
    ``tarfile.FilterError``; nothing more is extracted): a member outside ``top``, one whose
    path runs through a symlink or a non-directory, a hard link to anything but a regular
    file already extracted, and everything tarfile's own ``tar`` filter refuses (absolute
    paths, ``..``, paths resolving outside ``dest``). That filter also drops set-id bits
    and group/other write permission. A hard link to a symlink becomes a copy of that
    symlink. Other tar errors propagate as ``tarfile.TarError``.
    Stopped with ``ArchiveTooLargeError`` before the member that would take the copy past
    ``max_bytes`` (see ``MAX_COLLECT_BYTES``) is written. After any error, what was
    extracted is removed (``dest / top`` included).
    """
    if not top or "/" in top or top in (".", ".."):
        raise ValueError(f"not a directory name: {top!r}")
    root = dest / top
    root.mkdir()
    reader = io.BufferedReader(_ChunkReader(chunks), buffer_size=1 << 16)
    check = _member_filter(dest, top, label or top, warn)
    taken = 0

    def capped(member: tarfile.TarInfo, dest_path: str) -> tarfile.TarInfo | None:
        nonlocal taken
        # Counted before anything of the member is written, skipped ones included: the
        # stream brings them all the same.
        taken += tarfile.BLOCKSIZE + (member.size if member.isreg() else 0)
        if taken > max_bytes:
            raise ArchiveTooLargeError(label or top, max_bytes)
        return check(member, dest_path)

    try:
        with tarfile.open(fileobj=reader, mode="r|") as tar:
            tar.extractall(dest, filter=capped)
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise
    return root


def _member_filter(
    dest: Path, top: str, label: str, warn: Callable[[str], None]
) -> Callable[[tarfile.TarInfo, str], tarfile.TarInfo | None]:
    """The filter ``extract_stream`` applies to each member just before it is extracted
    (so the checks see everything extracted before it)."""

    def check(member: tarfile.TarInfo, dest_path: str) -> tarfile.TarInfo | None:
        parts = _parts(member, member.name)
        if parts[0] != top:
            raise UnsafeArchiveError(member, f"is outside {top}")
        if len(parts) == 1:
            if not member.isdir():
                what = "a symlink" if member.issym() else "not a directory"
                warn(f"{label} is {what} in the box; it is not followed (taken as empty)")
                return None
            # The bot made this directory; the box's entry only brings its mode and times.
            return tarfile.tar_filter(member, dest_path)
        if not (member.isreg() or member.isdir() or member.issym() or member.islnk()):
            warn(f"skipped {member.name} from the box: {_kind(member)} are not copied out")
            return None
        _no_links_on_the_way(dest, parts, member)
        if not member.issym():
            st = _lstat(dest.joinpath(*parts), member)
            if st is not None and stat.S_ISLNK(st.st_mode):
                raise UnsafeArchiveError(member, "would be written through a symlink")
        if member.islnk():
            target = _parts(member, member.linkname)
            if target[0] != top:
                raise UnsafeArchiveError(member, "links outside the directory")
            _no_links_on_the_way(dest, target, member)
            source = dest.joinpath(*target)
            st = _lstat(source, member)
            if st is not None and stat.S_ISLNK(st.st_mode):
                # A hard link to a symlink (``cp -al`` makes them) is that same symlink.
                # tarfile would first look the link up with os.path.exists, which follows
                # it onto the host; a copy of the link depends on nothing outside.
                member = copy.copy(member)
                member.type, member.linkname = tarfile.SYMTYPE, os.readlink(source)
            elif st is None or not stat.S_ISREG(st.st_mode):
                raise UnsafeArchiveError(member, "is a hard link to no regular file")
        return tarfile.tar_filter(member, dest_path)

    return check


def _parts(member: tarfile.TarInfo, name: str) -> tuple[str, ...]:
    """The components of a member's name (or link target), refusing absolute ones, ``..``
    and empty names."""
    path = PurePosixPath(name)
    parts = tuple(p for p in path.parts if p != ".")
    if path.is_absolute() or not parts or ".." in parts:
        raise UnsafeArchiveError(member, f"names {name!r}: absolute, empty or with '..'")
    return parts


def _no_links_on_the_way(dest: Path, parts: tuple[str, ...], member: tarfile.TarInfo) -> None:
    """Every existing parent of ``parts`` under ``dest`` must be a real directory."""
    here = dest
    for part in parts[:-1]:
        here = here / part
        st = _lstat(here, member)
        if st is None:
            return  # created by tarfile below directories already checked
        if not stat.S_ISDIR(st.st_mode):
            raise UnsafeArchiveError(member, "goes through a symlink or a file")


def _lstat(path: Path, member: tarfile.TarInfo) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None
    except OSError as err:
        raise UnsafeArchiveError(member, f"cannot be checked: {err.strerror}") from None


def _kind(member: tarfile.TarInfo) -> str:
    if member.ischr() or member.isblk():
        return "device nodes"
    if member.isfifo():
        return "fifos"
    return "special files"
