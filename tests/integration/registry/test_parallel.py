"""New layers upload in parallel: with two slow uploads, both are in flight at once."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bot.logs import MemoryLog
from bot.pushers.credentials import RegistryCredentials
from bot.pushers.daemonless import DaemonlessPusher
from bot.pushers.model import ImageConfig, ImageSpec, LayerDir, Target
from bot.pushers.registry.client import RetryPolicy
from tests.harness.fault_proxy import FaultProxy
from tests.harness.registry import RegistryServer

FAST = RetryPolicy(attempts=3, backoff=0.05, factor=2)
UPLOAD = r"/blobs/uploads/"
SLOW = 0.8  # seconds each layer body is held by the proxy


def layer_dirs(tmp_path: Path, count: int) -> list[LayerDir]:
    dirs = []
    for i in range(count):
        src = tmp_path / f"layer{i}"
        src.mkdir()
        (src / "random.bin").write_bytes(os.urandom(200_000))
        dirs.append(LayerDir(src, f"/l{i}"))
    return dirs


def push(proxy: FaultProxy, tmp_path: Path, repo: str, *, stream: bool, threads: int) -> str:
    pusher = DaemonlessPusher(
        {},
        tmp_path / "cache",
        credentials=RegistryCredentials({}),
        retry=FAST,
        stream_uploads=stream,
        threads=threads,
    )
    image = ImageSpec(layer_dirs(tmp_path, 3), ImageConfig(cmd=["/x"]))
    return pusher.push(image, Target(proxy.host, repo, ("v1",), "http"), MemoryLog()).digest


@pytest.mark.parametrize(("stream", "method"), [(False, "PUT"), (True, "PATCH")])
def test_new_layers_upload_at_the_same_time(
    fault_proxy: FaultProxy,
    registry_plain: RegistryServer,
    tmp_path: Path,
    stream: bool,
    method: str,
) -> None:
    fault_proxy.add(method, UPLOAD, "delay", times=3, seconds=SLOW, only_with_body=True)
    digest = push(fault_proxy, tmp_path, f"parallel/{method.lower()}", stream=stream, threads=4)
    assert fault_proxy.max_in_flight(method, UPLOAD, only_with_body=True) >= 2
    assert registry_plain.inspect(f"parallel/{method.lower()}", "v1")["Digest"] == digest


def test_one_thread_uploads_one_layer_at_a_time(
    fault_proxy: FaultProxy, registry_plain: RegistryServer, tmp_path: Path
) -> None:
    """The control: the measure does tell serial uploads from parallel ones."""
    fault_proxy.add("PUT", UPLOAD, "delay", times=3, seconds=0.2, only_with_body=True)
    push(fault_proxy, tmp_path, "parallel/serial", stream=False, threads=1)
    assert fault_proxy.max_in_flight("PUT", UPLOAD, only_with_body=True) == 1
    assert fault_proxy.count("PUT", UPLOAD) >= 4  # three layers and the config
