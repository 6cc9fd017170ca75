"""Copying a host directory into a box (``Session.put_dir``), shared by the runners.

The directory is one only the bot or the operator writes (a step package), but what it
holds is copied as it is: links are copied as links and never followed, anything that is
no file, directory or link is left out, ``.git`` is skipped, a ``run.sh`` that is not a
regular file is refused, and the copy is bounded in bytes and files (``StepConfigError``).
"""

from __future__ import annotations

import io
import os
import stat
import tarfile
from collections.abc import Iterator
from pathlib import Path

from bot.errors import InfrastructureError, StepConfigError

MAX_STAGED_BYTES = 64 * 1024 * 1024
MAX_STAGED_FILES = 5000

# (relative path, kind, data or link target, mode)
Entry = tuple[str, str, str | bytes, int]


def check_name(name: str) -> str:
    """``name`` when it is one plain path component, else ``InfrastructureError`` (the
    bot chooses it: anything else is a bug of ours)."""
    if not name or "/" in name or name in (".", "..") or "\0" in name:
        raise InfrastructureError(f"cannot copy into the box as {name!r}: not a plain name")
    return name


def walk(directory: Path) -> Iterator[Entry]:
    """``(relative path, kind, data or link target, mode)`` for everything in
    ``directory``, parents first: ``dir``, ``file`` (read without following a link) or
    ``link``; anything else is left out. ``run.sh`` must be a regular file. Bounded."""
    budget = [MAX_STAGED_BYTES, MAX_STAGED_FILES]
    yield from _walk_dir(directory, "", budget)


def _walk_dir(directory: Path, rel: str, budget: list[int]) -> Iterator[Entry]:
    with os.scandir(directory) as entries:
        items = sorted(entries, key=lambda e: e.name)
    for entry in items:
        path = f"{rel}{entry.name}"
        budget[1] -= 1
        if budget[1] < 0:
            raise StepConfigError(f"the step package has over {MAX_STAGED_FILES} files")
        if path == "run.sh" and not entry.is_file(follow_symlinks=False):
            raise StepConfigError("the step package's run.sh is not a regular file; refused")
        if entry.is_symlink():
            yield path, "link", os.readlink(entry.path), 0o777
        elif entry.is_dir(follow_symlinks=False):
            if entry.name == ".git":
                continue
            yield path, "dir", b"", 0o755
            yield from _walk_dir(Path(entry.path), path + "/", budget)
        elif entry.is_file(follow_symlinks=False):
            data = _read_file(entry.path, budget)
            mode = entry.stat(follow_symlinks=False).st_mode
            yield path, "file", data, 0o755 if mode & 0o111 else 0o644


def _read_file(path: str, budget: list[int]) -> bytes:
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return b""
        data = handle.read(budget[0] + 1)
    budget[0] -= len(data)
    if budget[0] < 0:
        raise StepConfigError(f"the step package is over {MAX_STAGED_BYTES // 2**20} MiB")
    return data


def tar_dir(directory: Path, name: str) -> bytes:
    """``directory`` as a tar of ``name/...``, owned by root, links as links."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        top = tarfile.TarInfo(name)
        top.type, top.mode = tarfile.DIRTYPE, 0o755
        tar.addfile(top)
        for rel, kind, data, mode in walk(directory):
            info = tarfile.TarInfo(f"{name}/{rel}")
            info.mode = mode
            if kind == "dir":
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            elif kind == "link":
                info.type, info.linkname = tarfile.SYMTYPE, str(data)
                tar.addfile(info)
            else:
                assert isinstance(data, bytes)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def copy_dir(directory: Path, parent: Path, name: str) -> Path:
    """Copies ``directory`` into a fresh ``parent/name`` (files read-only) and returns it.
    ``parent`` (the local step home) is writable by steps, so everything is created
    relative to directory fds that never follow a link, in a directory that did not exist
    (no step runs meanwhile)."""
    parent_fd = os.open(parent, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        os.mkdir(name, 0o755, dir_fd=parent_fd)
        root_fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=parent_fd)
    finally:
        os.close(parent_fd)
    try:
        for rel, kind, data, mode in walk(directory):
            if kind == "dir":
                os.mkdir(rel, 0o755, dir_fd=root_fd)
            elif kind == "link":
                os.symlink(str(data), rel, dir_fd=root_fd)
            else:
                assert isinstance(data, bytes)
                flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
                fd = os.open(rel, flags, mode & 0o555, dir_fd=root_fd)
                with os.fdopen(fd, "wb") as handle:
                    handle.write(data)
    finally:
        os.close(root_fd)
    return parent / name
