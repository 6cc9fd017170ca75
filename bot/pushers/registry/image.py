"""Image config JSON and manifest bytes (Docker v2 schema 2, or OCI when the base is OCI).

Both are serialised once, compactly and with sorted keys, and pushed as exactly those bytes:
their digests are computed from them and never re-derived.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.pushers.image_config import merge_config
from bot.pushers.model import ImageConfig

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
EPOCH = "1970-01-01T00:00:00Z"


@dataclass(frozen=True)
class MediaTypes:
    manifest: str
    config: str
    layer: str

    @property
    def oci(self) -> bool:
        return self.manifest == OCI_MANIFEST


DOCKER = MediaTypes(DOCKER_MANIFEST, DOCKER_CONFIG, DOCKER_LAYER)
OCI = MediaTypes(OCI_MANIFEST, OCI_CONFIG, OCI_LAYER)


def media_types_for(base_manifest_type: str | None) -> MediaTypes:
    """OCI only when the base is OCI: one family per manifest, never mixed."""
    return OCI if base_manifest_type == OCI_MANIFEST else DOCKER


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    extra: dict[str, Any] = field(default_factory=dict)  # urls, annotations of base layers

    def to_json(self) -> dict[str, Any]:
        return {
            **self.extra,
            "mediaType": self.media_type,
            "digest": self.digest,
            "size": self.size,
        }


@dataclass(frozen=True)
class NewLayer:
    """A layer this push adds: its ``diff_id`` and a ``created_by`` line for history."""

    diff_id: str
    created_by: str


def serialise(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def build_config(
    config: ImageConfig,
    new_layers: Sequence[NewLayer],
    *,
    base: dict[str, Any] | None = None,
    created: str | None = None,
    architecture: str = "amd64",
    os_name: str = "linux",
) -> bytes:
    """The config blob: ``config`` applied over ``base`` (a base image's config JSON).

    The runtime config (``config``) is ``merge_config`` of ``bot.pushers.image_config``, the
    same the engine pusher commits with. ``created`` defaults to the epoch, so the same
    input gives the same digest.
    """
    doc: dict[str, Any] = copy.deepcopy(base) if base else {}
    when = created or EPOCH
    doc["architecture"] = doc.get("architecture") or architecture
    doc["os"] = doc.get("os") or os_name
    doc["created"] = when
    for volatile in ("container", "container_config", "docker_version", "id", "parent"):
        doc.pop(volatile, None)
    doc["config"] = merge_config(doc.get("config"), config)
    if config.author:
        doc["author"] = config.author
    rootfs = doc.get("rootfs") or {}
    diff_ids = list(rootfs.get("diff_ids") or []) if base else []
    doc["rootfs"] = {"type": "layers", "diff_ids": diff_ids + [n.diff_id for n in new_layers]}
    history = list(doc.get("history") or []) if base else []
    for layer in new_layers:
        entry: dict[str, Any] = {"created": when, "created_by": layer.created_by}
        if config.author:
            entry["author"] = config.author
        if config.message:
            entry["comment"] = config.message
        history.append(entry)
    doc["history"] = history
    return serialise(doc)


def build_manifest(types: MediaTypes, config: Descriptor, layers: Sequence[Descriptor]) -> bytes:
    """The manifest bytes; ``mediaType`` is always included (OCI makes it optional, but
    clients key on it)."""
    doc = {
        "schemaVersion": 2,
        "mediaType": types.manifest,
        "config": config.to_json(),
        "layers": [layer.to_json() for layer in layers],
    }
    return serialise(doc)
