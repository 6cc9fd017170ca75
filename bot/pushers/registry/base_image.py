"""A base image read from its registry: the manifest for this host's platform, and its config."""

from __future__ import annotations

import json
import platform
from dataclasses import dataclass
from typing import Any

from bot.errors import RegistryError, RegistryUnavailable
from bot.pushers.model import ImageRef
from bot.pushers.registry.client import RegistryClient
from bot.pushers.registry.image import DOCKER_MANIFEST, OCI_MANIFEST, Descriptor
from bot.pushers.registry.manifests import MANIFEST_LIST_V2, OCI_INDEX
from bot.pushers.registry.transport_errors import unknown_host

_ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}


def host_architecture() -> str:
    return _ARCH.get(platform.machine().lower(), "amd64")


@dataclass(frozen=True)
class BaseImage:
    """A base image as fetched: its manifest's media type and layer descriptors, its config
    JSON, and the repository the layers can be read (or mounted) from."""

    ref: ImageRef
    manifest_type: str
    layers: tuple[Descriptor, ...]
    config: dict[str, Any]


def fetch_base(client: RegistryClient, ref: ImageRef, architecture: str) -> BaseImage:
    """Reads a base image's manifest (choosing ``linux/<architecture>`` from an index) and
    its config."""
    manifest = client.get_manifest(ref.repository, ref.reference)
    doc = json.loads(manifest.body)
    media_type = doc.get("mediaType") or manifest.media_type
    if media_type in (MANIFEST_LIST_V2, OCI_INDEX) or "manifests" in doc:
        entries = [m for m in doc.get("manifests", []) if isinstance(m, dict)]
        linux = [m for m in entries if (m.get("platform") or {}).get("os") == "linux"]
        chosen = next(
            (m for m in linux if m["platform"].get("architecture") == architecture),
            next((m for m in linux if m["platform"].get("architecture") == "amd64"), None),
        )
        if chosen is None:
            raise RegistryError(
                f"base image {ref} has no linux/{architecture} or linux/amd64 variant",
                registry=ref.registry,
                repository=ref.repository,
                action="pull",
            )
        manifest = client.get_manifest(ref.repository, chosen["digest"])
        doc = json.loads(manifest.body)
        media_type = doc.get("mediaType") or manifest.media_type
    if media_type not in (DOCKER_MANIFEST, OCI_MANIFEST):
        raise RegistryError(
            f"base image {ref} has a manifest of type {media_type or 'unknown'}; only Docker "
            "v2 schema 2 and OCI image manifests can be used as a base",
            registry=ref.registry,
            repository=ref.repository,
            action="pull",
        )
    layers = tuple(
        Descriptor(
            layer["mediaType"],
            layer["digest"],
            int(layer["size"]),
            {k: v for k, v in layer.items() if k in ("urls", "annotations")},
        )
        for layer in doc.get("layers", [])
    )
    config = json.loads(client.get_blob(ref.repository, doc["config"]["digest"]))
    return BaseImage(ref, media_type, layers, config)


BASE_NAMED_IN = "wercker.yml 'box' (the base of the pushed image)"


def unknown_base_host(err: RegistryUnavailable, base: ImageRef | None) -> RegistryError | None:
    """``UnknownRegistryHost`` (action ``pull``, repository the base's) when ``err`` is DNS
    saying that the base image's registry host does not exist; None otherwise. The base is
    the pipeline's box (``internal/docker-push``): the user named it."""
    found = unknown_host(err, base.registry, BASE_NAMED_IN) if base is not None else None
    if found is not None and base is not None:
        found.repository, found.action = base.repository, "pull"
    return found
