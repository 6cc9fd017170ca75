"""Deterministic layers and the layer cache."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import shutil
import tarfile
from pathlib import Path
from typing import Any

import pytest

from bot.pushers.model import LayerDir
from bot.pushers.registry.layers import LayerCache, LayerSource, build_layer, diff_id_of, entries


def make_tree(root: Path, order: list[str]) -> Path:
    files = {
        "b.txt": b"bee\n",
        "a/z.bin": os.urandom(0) + b"\x00" * 5000,
        "a/y.sh": b"#!/bin/sh\necho y\n",
        "c/d/e.txt": b"deep\n",
    }
    for name in order:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(files[name])
    (root / "a" / "y.sh").chmod(0o750)
    (root / "link").symlink_to("b.txt")
    return root


ORDER = ["b.txt", "a/z.bin", "a/y.sh", "c/d/e.txt"]


def test_same_files_in_different_order_give_the_same_digests(tmp_path: Path) -> None:
    one = make_tree(tmp_path / "one", ORDER)
    two = make_tree(tmp_path / "two", list(reversed(ORDER)))
    os.utime(two / "b.txt", (1_600_000_000, 1_600_000_000))
    (two / "b.txt").chmod(0o600)  # modes are normalised
    l1 = build_layer(entries(LayerDir(one, "/pipeline/source")), tmp_path / "out")
    l2 = build_layer(entries(LayerDir(two, "/pipeline/source")), tmp_path / "out")
    assert (l1.diff_id, l1.digest, l1.size) == (l2.diff_id, l2.digest, l2.size)
    assert l1.path is not None and l1.path != l2.path


def test_digests_are_the_hashes_of_the_blob(tmp_path: Path) -> None:
    layer = build_layer(entries(LayerDir(make_tree(tmp_path / "t", ORDER), "/")), tmp_path)
    assert layer.path is not None
    blob = layer.path.read_bytes()
    assert layer.digest == "sha256:" + hashlib.sha256(blob).hexdigest()
    assert layer.size == len(blob)
    assert layer.diff_id == "sha256:" + hashlib.sha256(gzip.decompress(blob)).hexdigest()
    assert blob[4:8] == b"\0\0\0\0"  # gzip mtime 0
    assert layer.diff_id == diff_id_of(entries(LayerDir(tmp_path / "t", "/")))


def test_tar_content_parents_owner_modes(tmp_path: Path) -> None:
    layer = build_layer(
        entries(LayerDir(make_tree(tmp_path / "t", ORDER), "/pipeline/source")), tmp_path
    )
    assert layer.path is not None
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(layer.path.read_bytes()))) as tar:
        members = tar.getmembers()
        names = [m.name for m in members]
        assert names[:2] == ["pipeline", "pipeline/source"]
        assert names == sorted(names, key=lambda n: n.split("/"))
        by_name = {m.name: m for m in members}
        assert all(m.mtime == 0 and m.uid == 0 and m.gid == 0 for m in members)
        assert all(m.uname == "" and m.gname == "" for m in members)
        assert by_name["pipeline/source/a/y.sh"].mode == 0o755
        assert by_name["pipeline/source/b.txt"].mode == 0o644
        assert by_name["pipeline/source/link"].issym()
        assert by_name["pipeline/source/link"].linkname == "b.txt"
        data = tar.extractfile("pipeline/source/c/d/e.txt")
        assert data is not None and data.read() == b"deep\n"


def test_content_change_changes_digest(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "t", ORDER)
    before = diff_id_of(entries(LayerDir(root, "/")))
    (root / "b.txt").write_bytes(b"bea\n")
    assert diff_id_of(entries(LayerDir(root, "/"))) != before


def test_cache_skips_rebuild_for_unchanged_and_for_copied_content(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = LayerCache(tmp_path / "cache")
    root = make_tree(tmp_path / "t", ORDER)
    source = LayerSource(LayerDir(root, "/app"), cache, tmp_path / "tmp")
    assert source.known() is None
    layer = source.build()
    source.record(layer)

    calls: list[int] = []
    import bot.pushers.registry.layers as layers_mod

    real = layers_mod.diff_id_of

    def counting(e: Any) -> Any:
        calls.append(1)
        return real(e)

    monkeypatch.setattr(layers_mod, "diff_id_of", counting)
    again = LayerSource(LayerDir(root, "/app"), cache, tmp_path / "tmp").known()
    assert again is not None and again.digest == layer.digest and calls == []  # stat only

    copy = tmp_path / "fresh-checkout"
    shutil.copytree(root, copy, symlinks=True)
    found = LayerSource(LayerDir(copy, "/app"), cache, tmp_path / "tmp").known()
    assert found is not None and found.digest == layer.digest and calls == [1]  # hash only

    (copy / "b.txt").write_bytes(b"BEE\n")
    assert LayerSource(LayerDir(copy, "/app"), cache, tmp_path / "tmp").known() is None


def test_image_path_must_not_escape(tmp_path: Path) -> None:
    from bot.errors import PushError

    with pytest.raises(PushError):
        entries(LayerDir(tmp_path, "/a/../../etc"))


def test_directory_listing_order_does_not_matter(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import bot.pushers.registry.layers as layers_mod

    root = make_tree(tmp_path / "t", ORDER)
    normal = diff_id_of(entries(LayerDir(root, "/")))
    real_scandir = os.scandir
    monkeypatch.setattr(
        layers_mod.os,
        "scandir",
        lambda p: iter(sorted(real_scandir(p), key=lambda e: e.name, reverse=True)),
    )
    assert diff_id_of(entries(LayerDir(root, "/"))) == normal
