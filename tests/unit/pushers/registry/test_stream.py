"""LayerStream: the bytes handed to the upload are the temp file's, in order; an abandoned
stream still completes the file; a discarded one leaves nothing behind."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from bot.pushers.model import LayerDir
from bot.pushers.registry.layers import LayerCache, LayerSource
from bot.pushers.registry.stream import LayerStream


def layer_source(tmp_path: Path, mb: int = 6) -> LayerSource:
    src = tmp_path / "src"
    src.mkdir()
    for i in range(mb):
        (src / f"f{i}.bin").write_bytes(os.urandom(1 << 20))
    return LayerSource(LayerDir(src, "/data"), LayerCache(tmp_path / "cache"), tmp_path / "tmp")


def test_streamed_bytes_are_the_blob(tmp_path: Path) -> None:
    source = layer_source(tmp_path)
    stream = LayerStream(source, depth=2).start()
    data = b"".join(stream.chunks())
    layer = stream.finish()
    assert layer.path is not None and layer.path.read_bytes() == data
    assert "sha256:" + hashlib.sha256(data).hexdigest() == layer.digest == stream.digest()[0]
    assert stream.sent == layer.size == len(data)
    # the same files built the old way (no stream) give the same blob
    again = source.build()
    assert (again.digest, again.size) == (layer.digest, layer.size)


def test_abandoned_stream_still_completes_the_file(tmp_path: Path) -> None:
    stream = LayerStream(layer_source(tmp_path), depth=1).start()
    first = next(stream.chunks())
    stream.abandon()
    layer = stream.finish()
    assert layer.path is not None and layer.path.read_bytes().startswith(first)
    assert "sha256:" + hashlib.sha256(layer.path.read_bytes()).hexdigest() == layer.digest


def test_discarded_stream_leaves_no_file(tmp_path: Path) -> None:
    stream = LayerStream(layer_source(tmp_path), depth=1).start()
    next(stream.chunks())
    stream.discard()
    assert list((tmp_path / "tmp").glob("layer-*")) == []
