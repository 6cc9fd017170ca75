"""The cold path: a layer the cache does not know is uploaded while it is compressed (POST,
one chunked PATCH, PUT ?digest=), with the temp-file upload as the fallback. Asserted on what
the registry saw, through the fault proxy, and on what it stored."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pytest

from bot.errors import PushError
from bot.logs import MemoryLog
from bot.pushers.credentials import RegistryCredentials
from bot.pushers.daemonless import DaemonlessPusher
from bot.pushers.model import ImageConfig, ImageSpec, LayerDir, Target
from bot.pushers.registry import layers
from bot.pushers.registry.client import RegistryClient, RetryPolicy
from bot.pushers.registry.layers import LayerCache, LayerSource
from bot.pushers.registry.streamed import streaming_allowed
from tests.harness.fault_proxy import FaultProxy
from tests.harness.registry import RegistryServer

FAST = RetryPolicy(attempts=4, backoff=0.05, factor=2)
UPLOAD = r"/blobs/uploads/"


def source(tmp_path: Path, name: str = "src", size: int = 3_000_000) -> Path:
    src = tmp_path / name
    src.mkdir(exist_ok=True)
    # several compressed chunks: random data does not shrink
    (src / "random.bin").write_bytes(hashlib.sha256(b"seed").digest() * (size // 32))
    (src / "noise.bin").write_bytes(os.urandom(size))
    (src / "sub").mkdir(exist_ok=True)
    (src / "sub" / "text.txt").write_text("hello\n" * 1000)
    return src


def push(
    proxy: FaultProxy, tmp_path: Path, repository: str, src: Path, cache: str = "cache"
) -> tuple[str, MemoryLog]:
    log = MemoryLog()
    result = DaemonlessPusher(
        {}, tmp_path / cache, credentials=RegistryCredentials({}), retry=FAST
    ).push(
        ImageSpec([LayerDir(src, "/app")], ImageConfig(cmd=["/x"])),
        Target(proxy.host, repository, ("v1",), "http"),
        log,
    )
    return result.digest, log


def stored(registry: RegistryServer, repository: str) -> tuple[dict[str, Any], bytes]:
    """The manifest and the (only) layer blob as the registry serves them."""
    with RegistryClient(
        registry.host, "http", registry.auth, {}, credentials=RegistryCredentials({})
    ) as client:
        manifest = json.loads(client.get_manifest(repository, "v1").body)
        layer = manifest["layers"][0]
        with client.open_blob(repository, layer["digest"], layer["size"]) as blob:
            data = b"".join(blob)
    return manifest, data


def leftovers(tmp_path: Path, cache: str = "cache") -> list[Path]:
    """Layer files left in the pusher's spools (one directory per process under tmp/)."""
    return list((tmp_path / cache / "tmp").rglob("layer-*"))


def test_cold_push_streams_the_layer_in_one_patch(
    fault_proxy: FaultProxy, registry_plain: RegistryServer, tmp_path: Path
) -> None:
    src = source(tmp_path)
    digest, log = push(fault_proxy, tmp_path, "stream/cold", src)
    manifest, blob = stored(registry_plain, "stream/cold")
    layer = manifest["layers"][0]
    # the registry got the layer as one chunked PATCH, then an empty PUT ?digest=
    patches = [c for c in fault_proxy.chunked if c[0] == "PATCH"]
    assert len(patches) == 1 and patches[0][2] == layer["size"]
    assert fault_proxy.count("PATCH", UPLOAD, 202) == 1
    assert (
        fault_proxy.count(
            "PUT", r"/blobs/uploads/.*digest=sha256(:|%3A)" + layer["digest"][7:], 201
        )
        == 1
    )
    # what it stored is what the manifest names
    assert "sha256:" + hashlib.sha256(blob).hexdigest() == layer["digest"]
    assert len(blob) == layer["size"]
    assert registry_plain.inspect("stream/cold", "v1")["Digest"] == digest
    assert "uploaded while building" in log.text
    assert leftovers(tmp_path) == []


def test_streamed_digest_is_the_offline_build_and_a_repush_uploads_nothing(
    fault_proxy: FaultProxy, registry_plain: RegistryServer, tmp_path: Path
) -> None:
    """Determinism: the streamed blob is byte for byte what ``build_layer`` makes of the same
    files (here copied to another directory), and the cache filled by the streamed push makes
    a re-run upload nothing."""
    src = source(tmp_path)
    digest, _ = push(fault_proxy, tmp_path, "stream/det", src)
    manifest, _ = stored(registry_plain, "stream/det")
    copy = tmp_path / "copy"
    copy.mkdir()
    for path in sorted(src.rglob("*")):
        target = copy / path.relative_to(src)
        if path.is_dir():
            target.mkdir()
        else:
            target.write_bytes(path.read_bytes())
    offline = LayerSource(LayerDir(copy, "/app"), LayerCache(tmp_path / "c2"), tmp_path / "t2")
    built = offline.build()
    assert built.digest == manifest["layers"][0]["digest"]
    assert built.size == manifest["layers"][0]["size"]

    posts = fault_proxy.count("POST", UPLOAD)
    again, _ = push(fault_proxy, tmp_path, "stream/det", src)
    assert again == digest
    assert fault_proxy.count("POST", UPLOAD) == posts  # no upload at all


def test_registry_refusing_patch_gets_the_temp_file_put(
    fault_proxy: FaultProxy, registry_plain: RegistryServer, tmp_path: Path
) -> None:
    fault_proxy.add("PATCH", UPLOAD, "status", times=99, status=405, body=b"PATCH not allowed")
    digest, log = push(fault_proxy, tmp_path, "stream/nopatch", source(tmp_path))
    assert fault_proxy.count("PATCH", UPLOAD, 405) == 1  # tried once, then files
    assert fault_proxy.count("DELETE", UPLOAD) >= 1  # the abandoned session is cancelled
    assert fault_proxy.count("PUT", UPLOAD, 201) == 2  # layer and config, with bodies
    manifest, blob = stored(registry_plain, "stream/nopatch")
    assert "sha256:" + hashlib.sha256(blob).hexdigest() == manifest["layers"][0]["digest"]
    assert registry_plain.inspect("stream/nopatch", "v1")["Digest"] == digest
    assert "streaming upload failed (PATCH answered HTTP 405" in log.text
    assert leftovers(tmp_path) == []


def test_connection_dropped_mid_stream_restarts_from_the_temp_file(
    fault_proxy: FaultProxy, registry_plain: RegistryServer, tmp_path: Path
) -> None:
    fault_proxy.add("PATCH", UPLOAD, "drop")
    digest, log = push(fault_proxy, tmp_path, "stream/drop", source(tmp_path))
    assert fault_proxy.count("PATCH", UPLOAD, 0) == 1
    # stream POST, then file upload: HEAD (absent), POST, PUT with the whole file
    assert fault_proxy.count("POST", UPLOAD) == 3  # + the config's
    assert fault_proxy.count("PUT", UPLOAD, 201) == 2
    manifest, blob = stored(registry_plain, "stream/drop")
    assert "sha256:" + hashlib.sha256(blob).hexdigest() == manifest["layers"][0]["digest"]
    assert registry_plain.inspect("stream/drop", "v1")["Digest"] == digest
    assert "closed the connection" in log.text
    assert leftovers(tmp_path) == []


def test_lost_answer_to_the_closing_put_is_fine(
    fault_proxy: FaultProxy, registry_plain: RegistryServer, tmp_path: Path
) -> None:
    """The blob landed but the answer to PUT ?digest= was lost: the fallback's HEAD finds it."""
    fault_proxy.add("PUT", r"/blobs/uploads/.*digest=", "after", status=502)
    digest, _ = push(fault_proxy, tmp_path, "stream/landed", source(tmp_path))
    assert registry_plain.inspect("stream/landed", "v1")["Digest"] == digest


def test_build_failure_mid_stream_cancels_the_upload(
    fault_proxy: FaultProxy,
    registry_plain: RegistryServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = layers.write_tar

    def failing(entries: list[Any], out: Any) -> None:
        out.write(os.urandom(4 << 20))  # some compressed chunks reach the PATCH first
        raise PushError("app/random.bin changed while the layer was built")

    monkeypatch.setattr(layers, "write_tar", failing)
    with pytest.raises(PushError, match="changed while the layer was built"):
        push(fault_proxy, tmp_path, "stream/broken", source(tmp_path))
    monkeypatch.setattr(layers, "write_tar", real)
    assert fault_proxy.count("PUT", UPLOAD) == 0  # never completed
    assert fault_proxy.count("DELETE", UPLOAD) == 1
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize(
    ("host", "ok"),
    [
        ("us-docker.pkg.dev", False),
        ("europe-west1-docker.pkg.dev", False),
        ("gcr.io", False),
        ("eu.gcr.io", False),
        ("123456789012.dkr.ecr.us-east-1.amazonaws.com", True),
        ("ghcr.io", True),
        ("registry.example:5000", True),
        ("docker.pkg.dev.example.com", True),
    ],
)
def test_hosts_that_refuse_patch_never_stream(host: str, ok: bool) -> None:
    assert streaming_allowed(host) is ok
