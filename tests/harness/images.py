"""Test images built locally, with no internet.

``busybox_image`` (session-scoped fixture) is a function: ``busybox_image(server)`` pushes a
busybox base image to a ``RegistryServer`` from ``tests.harness.registry`` (once per server)
and returns its reference, e.g. ``127.0.0.1:PORT/library/busybox:latest``. Pass
``server.auth`` and ``server.registries`` to ``parse_image_ref`` to use it as a box/base.

The image is one layer made from Debian's ``/bin/busybox`` (busybox-static) with applet
symlinks under ``/bin``, ``Env PATH=...`` and ``Cmd ["sh"]``, pushed with our own
``DaemonlessPusher`` as Docker v2 schema 2.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from bot.logs import MemoryLog
from bot.pushers.credentials import RegistryCredentials
from bot.pushers.daemonless import DaemonlessPusher
from bot.pushers.model import ImageConfig, ImageSpec, LayerDir, Target

if TYPE_CHECKING:
    from tests.harness.registry import RegistryServer

BUSYBOX = Path("/bin/busybox")
APPLETS = (
    "sh",
    "ash",
    "cat",
    "echo",
    "ls",
    "env",
    "true",
    "false",
    "sleep",
    "mkdir",
    "rm",
    "cp",
    "mv",
    "pwd",
    "grep",
    "sed",
    "head",
    "tail",
    "wc",
    "id",
    "uname",
    "test",
    "[",
    "printf",
    "touch",
    "chmod",
    "find",
    "tar",
    "gzip",
    "sort",
    "tr",
    "cut",
    "date",
    "hostname",
    "whoami",
    "which",
    "xargs",
    "awk",
    "basename",
    "dirname",
    "ln",
    "readlink",
    "stat",
    "du",
    "df",
)
BUSYBOX_REPOSITORY = "library/busybox"
PATH_ENV = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def busybox_rootfs(directory: Path) -> Path:
    """A minimal root filesystem: ``/bin/busybox`` plus applet symlinks, ``/tmp``, ``/etc``."""
    if not BUSYBOX.is_file():
        pytest.skip("busybox-static is not installed (/bin/busybox)")
    root = directory / "rootfs"
    (root / "bin").mkdir(parents=True, exist_ok=True)
    shutil.copy2(BUSYBOX, root / "bin" / "busybox")
    (root / "bin" / "busybox").chmod(0o755)
    for applet in APPLETS:
        link = root / "bin" / applet
        if not link.is_symlink():
            link.symlink_to("busybox")
    for name in ("tmp", "etc", "root", "usr/bin"):
        (root / name).mkdir(parents=True, exist_ok=True)
    (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (root / "etc" / "group").write_text("root:x:0:\n")
    return root


def push_busybox(server: RegistryServer, directory: Path, tag: str = "latest") -> str:
    """Pushes the busybox image to ``server`` and returns its reference."""
    root = busybox_rootfs(directory)
    pusher = DaemonlessPusher(
        server.registries, directory / "cache", credentials=RegistryCredentials(server.registries)
    )
    target = Target(
        registry=server.host,
        repository=BUSYBOX_REPOSITORY,
        tags=(tag,),
        scheme="https" if server.scheme == "https" else "http",
        auth=server.auth,
    )
    image = ImageSpec(
        layers=[LayerDir(root, "/")],
        config=ImageConfig(cmd=["sh"], env={"PATH": PATH_ENV}),
    )
    pusher.push(image, target, MemoryLog())
    return server.ref(BUSYBOX_REPOSITORY, tag)


@pytest.fixture(scope="session")
def busybox_image(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[[RegistryServer], str]]:
    pushed: dict[str, str] = {}
    lock = threading.Lock()

    def get(server: RegistryServer) -> str:
        with lock:
            if server.host not in pushed:
                directory = tmp_path_factory.mktemp("busybox")
                pushed[server.host] = push_busybox(server, directory)
            return pushed[server.host]

    yield get
