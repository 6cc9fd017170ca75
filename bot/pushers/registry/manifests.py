"""Reading and storing manifests. A stored manifest counts only once the registry named our
own digest for it (behaviour §7)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.errors import RegistryError
from bot.pushers.registry.image import digest_of
from bot.pushers.registry.retry import seconds

if TYPE_CHECKING:
    from bot.logs import Log
    from bot.pushers.registry.client import RegistryClient

MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json"
MANIFEST_LIST_V2 = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MANIFEST_TYPES = (MANIFEST_V2, OCI_MANIFEST, MANIFEST_LIST_V2, OCI_INDEX)


@dataclass(frozen=True)
class Manifest:
    """A manifest as the registry stores it: exact ``body`` bytes, ``media_type`` and
    ``digest`` (sha256 of the bytes)."""

    body: bytes
    media_type: str
    digest: str


def get_manifest(client: RegistryClient, repository: str, reference: str) -> Manifest:
    """The manifest ``reference`` names; one asked for by digest is checked against it."""
    resp = client.as_puller(
        "GET",
        client.url(f"{repository}/manifests/{reference}"),
        repository,
        headers={"Accept": ", ".join(MANIFEST_TYPES)},
    )
    if resp.status_code != 200:
        raise client.fail(resp, f"pull {reference} from", repository)
    body = resp.content
    digest = "sha256:" + hashlib.sha256(body).hexdigest()
    if reference.startswith("sha256:") and digest != reference:
        raise RegistryError(
            f"{client.name}: manifest {reference} of {repository} is corrupt",
            registry=client.name,
            repository=repository,
            action="pull",
        )
    media_type = resp.headers.get("Content-Type", "").split(";")[0].strip()
    return Manifest(body, media_type, digest)


def manifest_digest(
    client: RegistryClient, repository: str, reference: str, media_type: str
) -> str | None:
    """The digest ``reference`` points at (``HEAD``, which registries do not rate-limit),
    or None when it does not exist or the registry does not say."""
    resp = client.as_pusher(
        "HEAD",
        client.url(f"{repository}/manifests/{reference}"),
        repository,
        headers={"Accept": media_type},
    )
    if resp.status_code == 200:
        return resp.headers.get("Docker-Content-Digest")
    if resp.status_code == 404:
        return None
    raise client.fail(resp, "push to", repository)


def put_manifest(
    client: RegistryClient, repository: str, reference: str, body: bytes, media_type: str
) -> str:
    """Stores the exact ``body`` under ``reference``; returns its digest once the registry
    has confirmed it (behaviour §7): the ``Docker-Content-Digest`` of the answer must be
    our own sha256 of the bytes. A registry (or proxy) that leaves the header out is asked
    again with ``HEAD manifests/<reference>``; a different digest, or still none, is a
    ``RegistryError`` naming both."""
    digest = "sha256:" + hashlib.sha256(body).hexdigest()
    resp = client.as_pusher(
        "PUT",
        client.url(f"{repository}/manifests/{reference}"),
        repository,
        body=body,
        headers={"Content-Type": media_type},
    )
    if resp.status_code not in (200, 201):
        raise client.fail(resp, f"push {reference} to", repository)
    echoed = resp.headers.get("Docker-Content-Digest")
    if echoed and echoed != digest:
        raise RegistryError(
            f"{client.name} stored {repository}:{reference} as {echoed}, but the manifest we "
            f"sent is {digest}; the registry or a proxy changed it",
            registry=client.name,
            repository=repository,
            action="push",
            http_status=resp.status_code,
        )
    if not echoed:
        _confirm_manifest(client, repository, reference, media_type, digest)
    return digest


def _confirm_manifest(
    client: RegistryClient, repository: str, reference: str, media_type: str, digest: str
) -> None:
    """``HEAD manifests/<reference>`` until it names a digest (a few tries: a registry on
    eventually consistent storage may not show a new tag at once); it must be ``digest``."""
    tries = max(1, min(3, client.retry.attempts))
    stored: str | None = None
    for attempt in range(tries):
        stored = manifest_digest(client, repository, reference, media_type)
        if stored:
            break
        if attempt + 1 < tries:
            client.say(
                f"{client.name} named no digest for {repository}:{reference} yet (HEAD); "
                f"asking again in {seconds(client.wait(attempt))} "
                f"(attempt {attempt + 2} of {tries})"
            )
            client.sleep(client.wait(attempt))
    if stored == digest:
        return
    if stored:
        raise RegistryError(
            f"{client.name} did not confirm the push of {repository}:{reference}: it sent no "
            f"Docker-Content-Digest, and HEAD says the tag is {stored}, but the manifest we "
            f"sent is {digest}; the registry or a proxy changed it",
            registry=client.name,
            repository=repository,
            action="push",
        )
    raise RegistryError(
        f"{client.name} did not confirm the push of {repository}:{reference}: the manifest we "
        f"sent is {digest}, but the registry named no digest (none in the PUT answer, none "
        "from HEAD); the push is not confirmed",
        registry=client.name,
        repository=repository,
        action="push",
    )


def tag_manifest(
    client: RegistryClient,
    repo: str,
    tags: tuple[str, ...],
    manifest: bytes,
    media_type: str,
    log: Log,
    before_put: Callable[[], None] | None = None,
) -> None:
    """Stores ``manifest`` under every tag. A re-run re-tags nothing: that also spares
    registries with immutable tags. ``before_put`` (``Target.before_tag``) is called right
    before each tag's PUT, the last moment to refuse: what it raises leaves that tag and
    the ones after it as they were."""
    digest = digest_of(manifest)
    for tag in tags:
        if client.manifest_digest(repo, tag, media_type) == digest:
            log.progress(f"Tag {repo}:{tag} is already {digest[:19]}…")
            continue
        if before_put is not None:
            before_put()
        client.put_manifest(repo, tag, manifest, media_type)
        log.progress(f"Manifest {digest[:19]}… stored as {repo}:{tag}")
