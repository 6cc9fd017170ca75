"""Deterministic image layers from host directories, with an on-disk cache.

A layer is a PAX tar of a directory placed at an image path: entries in sorted order with
explicit parent directories, mtime 0, uid/gid 0, empty owner names, modes normalised to
0755/0644 (0777 for symlinks). The same files give the same ``diff_id`` whatever the order
the filesystem lists them in, and the same compressor gives the same digest.

Compression is one pass: tar → sha256 (``diff_id``) → gzip (``isal``, fixed level,
``mtime=0``, no file name) → sha256 + byte count → temp file. ``LayerCache`` remembers
``diff_id`` → (digest, size) plus two fingerprints of the directory so that a re-run neither
re-reads unchanged files (exact stat fingerprint) nor recompresses the same content found in a
fresh checkout (shape fingerprint → a hash-only pass → ``diff_id`` hit).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, BinaryIO

from isal import igzip

from bot.errors import InfrastructureError, PushError
from bot.pushers.model import LayerDir

FORMAT_VERSION = "wercker-bot-layer-1"
# isal: 0–3. 2 is its default: ~zlib -6 ratio at several times the speed. Measured (isal 1.9.1,
# 2026-11): level 1 is no faster (random 294 vs 316 MB/s, text 1224 vs 1590 MB/s), 0 expands
# random data by 23 %. Changing it changes every digest.
GZIP_LEVEL = 2
COPY_BUFFER = 1 << 20
DIR_MODE, FILE_MODE, EXEC_MODE, LINK_MODE = 0o755, 0o644, 0o755, 0o777


@dataclass(frozen=True)
class Layer:
    """A built (or cached) layer. ``path`` is the compressed blob on disk, or None when the
    layer is known only from the cache (then it must already be in the registry)."""

    diff_id: str
    digest: str
    size: int
    path: Path | None = None


@dataclass(frozen=True)
class _Entry:
    arcname: str
    kind: str  # "dir" | "file" | "link"
    path: Path | None  # None for synthetic parent directories
    st: os.stat_result | None
    linkname: str = ""


def _normalise_image_path(image_path: str) -> str:
    parts = [p for p in image_path.split("/") if p and p != "."]
    if any(p == ".." for p in parts):
        raise PushError(f"layer path {image_path!r} must not contain '..'")
    return "/".join(parts)


def _walk(root: Path, prefix: str) -> Iterator[_Entry]:
    try:
        children = sorted(os.scandir(root), key=lambda e: e.name)
    except OSError as err:
        raise PushError(f"cannot read {root} for a layer: {err.strerror}") from None
    for child in children:
        arcname = f"{prefix}/{child.name}" if prefix else child.name
        # Never follow a link: a build may point one anywhere on the host.
        st = child.stat(follow_symlinks=False)
        if stat.S_ISLNK(st.st_mode):
            yield _Entry(arcname, "link", Path(child.path), st, os.readlink(child.path))
        elif stat.S_ISDIR(st.st_mode):
            yield _Entry(arcname, "dir", Path(child.path), st)
            yield from _walk(Path(child.path), arcname)
        elif stat.S_ISREG(st.st_mode):
            yield _Entry(arcname, "file", Path(child.path), st)
        # sockets, fifos and devices have no place in an image layer: skipped


def entries(layer: LayerDir) -> list[_Entry]:
    """Every tar entry of ``layer``, in archive order (parents first, names sorted). The
    root must be a real directory: a symlink there is refused, not followed."""
    try:
        root_mode = os.lstat(layer.host_path).st_mode
    except OSError:
        root_mode = 0
    if stat.S_ISLNK(root_mode):
        raise PushError(f"layer source {layer.host_path} is a symlink; it is not followed")
    if not stat.S_ISDIR(root_mode):
        raise PushError(f"layer source {layer.host_path} is not a directory")
    prefix = _normalise_image_path(layer.image_path)
    out: list[_Entry] = []
    parts = prefix.split("/") if prefix else []
    for i in range(1, len(parts) + 1):
        out.append(_Entry("/".join(parts[:i]), "dir", None, None))
    out.extend(_walk(layer.host_path, prefix))
    return out


def _mode(entry: _Entry) -> int:
    if entry.kind == "dir":
        return DIR_MODE
    if entry.kind == "link":
        return LINK_MODE
    assert entry.st is not None
    return EXEC_MODE if entry.st.st_mode & 0o111 else FILE_MODE


def _tarinfo(entry: _Entry) -> tarfile.TarInfo:
    info = tarfile.TarInfo(entry.arcname)
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mode = _mode(entry)
    if entry.kind == "dir":
        info.type = tarfile.DIRTYPE
    elif entry.kind == "link":
        info.type = tarfile.SYMTYPE
        info.linkname = entry.linkname
    else:
        assert entry.st is not None
        info.type = tarfile.REGTYPE
        info.size = entry.st.st_size
    return info


class _HashSink:
    """A write-only file object that hashes (and counts) what passes to ``inner``."""

    def __init__(self, inner: Any = None, tee: Callable[[bytes], None] | None = None) -> None:
        self.sha = hashlib.sha256()
        self.size = 0
        self._inner = inner
        self._tee = tee

    def write(self, data: bytes) -> int:
        self.sha.update(data)
        self.size += len(data)
        if self._inner is not None:
            try:
                self._inner.write(data)
            except OSError as err:
                # not the source's fault: keep it apart from read errors in write_tar
                raise InfrastructureError(f"cannot write a layer: {err.strerror}") from None
        if self._tee is not None and data:
            self._tee(bytes(data))
        return len(data)

    def tell(self) -> int:
        return self.size

    def flush(self) -> None:
        if self._inner is not None:
            self._inner.flush()

    def digest(self) -> str:
        return "sha256:" + self.sha.hexdigest()


def write_tar(layer_entries: list[_Entry], out: Any) -> None:
    """Writes the deterministic tar of ``layer_entries`` to ``out`` (needs ``write``/``tell``).
    A file whose size changes while it is read is an error: the tar would be corrupt."""
    with tarfile.TarFile(
        fileobj=out, mode="w", format=tarfile.PAX_FORMAT, copybufsize=COPY_BUFFER
    ) as tar:
        for entry in layer_entries:
            info = _tarinfo(entry)
            if entry.kind != "file":
                tar.addfile(info)
                continue
            assert entry.path is not None
            try:
                # A file swapped since it was listed is refused: O_NOFOLLOW for a link,
                # O_NONBLOCK plus the regular-file check for a fifo or a device (which would
                # block the push or feed it without end).
                flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
                fd = os.open(entry.path, flags)
                with os.fdopen(fd, "rb") as fh:
                    st = os.fstat(fh.fileno())
                    if not stat.S_ISREG(st.st_mode) or st.st_size != info.size:
                        raise PushError(f"{entry.path} changed while the layer was built")
                    tar.addfile(info, fh)
            except OSError as err:
                raise PushError(f"cannot read {entry.path}: {err.strerror}") from None


def diff_id_of(layer_entries: list[_Entry]) -> str:
    """The sha256 of the uncompressed tar, without writing anything."""
    sink = _HashSink()
    write_tar(layer_entries, sink)
    return sink.digest()


def build_layer(
    layer_entries: list[_Entry], out_dir: Path, on_chunk: Callable[[bytes], None] | None = None
) -> Layer:
    """Tars and compresses in one pass into a temp file under ``out_dir``. ``on_chunk``, when
    given, also receives every compressed chunk as it is produced (for a streaming upload);
    if it raises, the build stops and the temp file is removed."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix="layer-", suffix=".tar.gz", dir=out_dir)
    except OSError as err:
        raise InfrastructureError(f"cannot write a layer under {out_dir}: {err.strerror}") from None
    path = Path(name)
    try:
        with os.fdopen(fd, "wb", buffering=COPY_BUFFER) as raw:
            compressed = _HashSink(raw, on_chunk)
            with igzip.IGzipFile(
                filename="", mode="wb", compresslevel=GZIP_LEVEL, fileobj=compressed, mtime=0
            ) as gz:
                plain = _HashSink(gz)
                write_tar(layer_entries, plain)
        return Layer(plain.digest(), compressed.digest(), compressed.size, path)
    except OSError as err:
        path.unlink(missing_ok=True)
        raise InfrastructureError(f"cannot write a layer under {out_dir}: {err.strerror}") from None
    except BaseException:
        path.unlink(missing_ok=True)
        raise


def _fingerprint(layer: LayerDir, layer_entries: list[_Entry], exact: bool) -> str:
    h = hashlib.sha256(f"{FORMAT_VERSION}|{GZIP_LEVEL}|{exact}".encode())
    if exact:
        h.update(str(layer.host_path.resolve()).encode())
    for e in layer_entries:
        size = e.st.st_size if e.st is not None and e.kind == "file" else 0
        parts = [e.arcname, e.kind, str(_mode(e)), str(size), e.linkname]
        if exact and e.st is not None:
            st = e.st
            parts += [str(st.st_mtime_ns), str(st.st_ctime_ns), str(st.st_ino), str(st.st_dev)]
        h.update("\0".join(parts).encode("utf-8", "surrogateescape") + b"\n")
    return h.hexdigest()


@dataclass(frozen=True)
class CachedLayer:
    diff_id: str
    digest: str
    size: int


class LayerCache:
    """On-disk memory of built layers under ``root`` (one small JSON file per key, written
    atomically, so concurrent builds and processes are safe)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _file(self, kind: str, key: str) -> Path:
        return self.root / kind / f"{key.removeprefix('sha256:')}.json"

    def _read(self, kind: str, key: str) -> dict[str, Any] | None:
        with contextlib.suppress(OSError, ValueError):
            data = json.loads(self._file(kind, key).read_text())
            if isinstance(data, dict):
                return data
        return None

    def _write(self, kind: str, key: str, value: dict[str, Any]) -> None:
        path = self._file(kind, key)
        with contextlib.suppress(OSError):
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
            with os.fdopen(fd, "w") as fh:
                json.dump(value, fh)
            os.replace(tmp, path)

    def by_diff_id(self, diff_id: str) -> CachedLayer | None:
        data = self._read("diff", diff_id)
        if data and {"diff_id", "digest", "size"} <= data.keys():
            return CachedLayer(str(data["diff_id"]), str(data["digest"]), int(data["size"]))
        return None

    def by_fingerprint(self, kind: str, fingerprint: str) -> str | None:
        """The diff_id last recorded for an ``exact`` or ``shape`` fingerprint."""
        data = self._read(kind, fingerprint)
        return str(data["diff_id"]) if data and "diff_id" in data else None

    def remember(self, layer: CachedLayer, fingerprints: dict[str, str]) -> None:
        self._write("diff", layer.diff_id, asdict(layer))
        for kind, fingerprint in fingerprints.items():
            self._write(kind, fingerprint, {"diff_id": layer.diff_id})


class LayerSource:
    """One ``LayerDir`` on its way to a blob: cache lookups first, compression last.

    ``known()`` returns the cached layer when this content was built before (by exact stat
    fingerprint, or by a hash-only pass when the file list looks the same); ``build()``
    compresses it. Call ``record()`` after a successful upload.
    """

    def __init__(self, layer: LayerDir, cache: LayerCache, tmp_dir: Path) -> None:
        self.layer = layer
        self.cache = cache
        self.tmp_dir = tmp_dir
        self.entries = entries(layer)
        self.fingerprints = {
            "exact": _fingerprint(layer, self.entries, exact=True),
            "shape": _fingerprint(layer, self.entries, exact=False),
        }

    @property
    def total_bytes(self) -> int:
        return sum(e.st.st_size for e in self.entries if e.kind == "file" and e.st is not None)

    def known(self) -> CachedLayer | None:
        diff_id = self.cache.by_fingerprint("exact", self.fingerprints["exact"])
        if diff_id is None and self.cache.by_fingerprint("shape", self.fingerprints["shape"]):
            diff_id = diff_id_of(self.entries)
        return self.cache.by_diff_id(diff_id) if diff_id else None

    def build(self, on_chunk: Callable[[bytes], None] | None = None) -> Layer:
        return build_layer(self.entries, self.tmp_dir, on_chunk)

    def record(self, layer: CachedLayer | Layer) -> None:
        self.cache.remember(CachedLayer(layer.diff_id, layer.digest, layer.size), self.fingerprints)


def open_layer_file(path: Path) -> BinaryIO:
    return open(path, "rb")
