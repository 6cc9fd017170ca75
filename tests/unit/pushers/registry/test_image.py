"""Config merging and manifest bytes."""

from __future__ import annotations

import json
from typing import Any

from bot.pushers.model import ImageConfig
from bot.pushers.registry.image import (
    DOCKER,
    OCI,
    OCI_MANIFEST,
    Descriptor,
    NewLayer,
    build_config,
    build_manifest,
    digest_of,
    media_types_for,
)

BASE: dict[str, Any] = {
    "architecture": "arm64",
    "os": "linux",
    "created": "2024-01-01T00:00:00Z",
    "container_config": {"Cmd": ["x"]},
    "config": {
        "Env": ["PATH=/bin", "LANG=C"],
        "Cmd": ["sh"],
        "ExposedPorts": {"80/tcp": {}},
        "Labels": {"a": "1"},
        "Volumes": {"/data": {}},
    },
    "rootfs": {"type": "layers", "diff_ids": ["sha256:" + "1" * 64]},
    "history": [{"created_by": "base"}],
}


def test_merge_over_base() -> None:
    cfg = ImageConfig(
        entrypoint=["/app"],
        env={"LANG": "en", "NEW": "x"},
        ports=["8080", "53/udp"],
        volumes=["/cache"],
        labels={"b": "2"},
        user="1000",
        working_dir="/srv",
        stop_signal="SIGINT",
        author="me",
        message="built",
    )
    doc = json.loads(build_config(cfg, [NewLayer("sha256:" + "2" * 64, "layer")], base=BASE))
    run = doc["config"]
    assert run["Env"] == ["PATH=/bin", "LANG=en", "NEW=x"]
    assert run["Entrypoint"] == ["/app"] and "Cmd" not in run
    assert run["ExposedPorts"] == {"80/tcp": {}, "8080/tcp": {}, "53/udp": {}}
    assert run["Volumes"] == {"/data": {}, "/cache": {}}
    assert run["Labels"] == {"a": "1", "b": "2"}
    assert (run["User"], run["WorkingDir"], run["StopSignal"]) == ("1000", "/srv", "SIGINT")
    assert doc["architecture"] == "arm64"
    assert doc["rootfs"]["diff_ids"] == ["sha256:" + "1" * 64, "sha256:" + "2" * 64]
    assert doc["history"][-1] == {
        "created": "1970-01-01T00:00:00Z",
        "created_by": "layer",
        "author": "me",
        "comment": "built",
    }
    assert "container_config" not in doc
    assert BASE["config"]["Env"] == ["PATH=/bin", "LANG=C"]  # base left untouched


def test_scratch_config_is_deterministic_and_minimal() -> None:
    cfg = ImageConfig(cmd=["/hello"])
    one = build_config(cfg, [NewLayer("sha256:" + "3" * 64, "l")])
    two = build_config(cfg, [NewLayer("sha256:" + "3" * 64, "l")])
    assert one == two
    doc = json.loads(one)
    assert doc["architecture"] == "amd64" and doc["os"] == "linux"
    assert doc["rootfs"] == {"type": "layers", "diff_ids": ["sha256:" + "3" * 64]}
    assert doc["config"] == {"Cmd": ["/hello"]}
    created = build_config(cfg, [], created="2026-11-27T10:00:00Z")
    assert json.loads(created)["created"] == "2026-11-27T10:00:00Z" and created != one


def test_manifest_family_follows_the_base() -> None:
    assert media_types_for(None) is DOCKER
    assert media_types_for("application/vnd.docker.distribution.manifest.v2+json") is DOCKER
    assert media_types_for(OCI_MANIFEST) is OCI
    config = Descriptor(OCI.config, "sha256:" + "c" * 64, 10)
    layer = Descriptor(OCI.layer, "sha256:" + "d" * 64, 20, {"annotations": {"k": "v"}})
    body = build_manifest(OCI, config, [layer])
    doc = json.loads(body)
    assert doc["mediaType"] == OCI_MANIFEST and doc["schemaVersion"] == 2
    assert doc["layers"][0]["annotations"] == {"k": "v"}
    assert digest_of(body) == digest_of(build_manifest(OCI, config, [layer]))
