"""The image reference grammar, and nothing else: pure string rules with no registry settings,
credentials or network, so that both ``bot.wercker`` (lint, for ``wercker-bot check``) and
``bot.pushers.target`` (pushes and box pulls) use one implementation without the frontend
importing the pushers. Imports only ``bot.errors``.

Rules are behaviour.md §7 and distribution/reference's grammar.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from bot.errors import StepConfigError

DOCKER_HUB = "registry-1.docker.io"
DOCKER_HUB_ALIASES = frozenset(
    {
        "",
        "docker.io",
        "index.docker.io",
        "registry.hub.docker.com",
        "registry-1.docker.io",
        "hub.docker.com",
    }
)

MAX_TAG_LENGTH = 128
_TAG_BAD_RUN = re.compile(r"[^A-Za-z0-9_.-]+")
# distribution/reference: lower-case components joined by '.', '_', '__' or runs of '-'.
_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
_DIGEST = re.compile(r"^sha256:[a-f0-9]{64}$")


def sanitize_tag(tag: str) -> str:
    """Makes ``tag`` a valid Docker tag the way docker/metadata-action does, plus the grammar's
    own limits: runs outside ``[A-Za-z0-9_.-]`` → ``-``, leading ``.``/``-`` dropped, cut to
    128 characters, empty → ``latest``."""
    cleaned = _TAG_BAD_RUN.sub("-", tag).lstrip(".-")[:MAX_TAG_LENGTH]
    return cleaned or "latest"


def looks_like_host(component: str) -> bool:
    """Docker's rule for the first path component of a name: a host if it has a dot or a
    port, or is ``localhost``."""
    return "." in component or ":" in component or component == "localhost"


def check_repository(repository: str, where: str) -> None:
    """Raises ``StepConfigError`` (prefixed with ``where``) unless ``repository`` is a valid
    repository path: non-empty lower-case components, at most 255 characters."""
    if not repository:
        raise StepConfigError(f"{where}: the repository is empty")
    for component in repository.split("/"):
        if not _COMPONENT.match(component):
            raise StepConfigError(
                f"{where}: {component!r} is not a valid repository path component "
                "(lower-case letters, digits, and '.', '_', '-' between them)"
            )
    if len(repository) > 255:
        raise StepConfigError(f"{where}: the repository name is longer than 255 characters")


def without_reference(image: str) -> str:
    """``host:5000/a/b:1.0`` or ``a/b@sha256:…`` → the name alone; a ``:`` only counts as a
    tag separator in the last path component."""
    image = image.strip().split("@", 1)[0]
    head, slash, last = image.rpartition("/")
    return head + slash + last.split(":", 1)[0]


class ImageName(NamedTuple):
    """An image reference split by the grammar alone. ``host`` is ``registry-1.docker.io``
    for Docker Hub, named or not (``library/`` is added to one-component names); ``scheme``
    is ``http``/``https`` when written or implied (Docker Hub), else ``None`` (the registry
    settings decide, in ``bot.pushers.target.default_scheme``)."""

    host: str
    repository: str
    reference: str
    scheme: str | None


def split_image_ref(text: str) -> ImageName:
    """Splits a box id such as ``busybox``, ``127.0.0.1:5000/library/busybox:1.36`` or
    ``quay.io/x/y@sha256:…``.

    The host is the first component only when it looks like one (dot, port or
    ``localhost``); the tag is after the last ``:`` of the last component, so
    ``host:5000/app`` has no tag. Raises ``StepConfigError`` on a malformed reference.
    """
    original = text
    text = text.strip()
    explicit: str | None = None
    match = re.match(r"^(https?)://", text, re.IGNORECASE)
    if match:
        explicit = match.group(1).lower()
        text = text[match.end() :]
    if not text:
        raise StepConfigError("the image reference is empty")
    reference = "latest"
    name, at, digest = text.partition("@")
    if at:
        if not _DIGEST.match(digest):
            raise StepConfigError(f"image {original!r}: {digest!r} is not a sha256 digest")
        reference = digest
    head, slash, last = name.rpartition("/")
    if ":" in last:
        last, _, tag = last.partition(":")
        if not at:
            reference = tag
        if tag != sanitize_tag(tag) or not tag:
            raise StepConfigError(f"image {original!r}: {tag!r} is not a valid tag")
    name = f"{head}{slash}{last}"
    first, _, rest = name.partition("/")
    host = ""
    if rest and looks_like_host(first):
        host, name = first.lower(), rest
    if host in DOCKER_HUB_ALIASES:
        host = DOCKER_HUB
        if "/" not in name:
            name = f"library/{name}"
        explicit = "https"
    if name != name.lower():
        raise StepConfigError(f"image {original!r}: repository names must be lower-case")
    check_repository(name, f"image {original!r}")
    return ImageName(host, name, reference, explicit)
