"""Pulling an image on the Docker Engine (the box, a service, an ``internal/docker-run``
container) and turning what the engine says about a failed pull into a registry error with
its facts (``bot.errors.RegistryProblem``), as the daemonless client's errors carry them.

Which side a failed pull is on: the registry refused it (credentials, no such image) or a
registry host the user named does not exist → ``RegistryError`` (the pipeline ``failed``);
the registry could not be reached or failed (refused, TLS, timeouts, 5xx, a temporary DNS
failure, a host the user did not name) → ``RegistryUnavailable`` (``errored``).
"""

from __future__ import annotations

import re
from typing import Any

from docker.errors import APIError, DockerException, ImageNotFound

from bot.engine import EngineHandle, auth_config, engine_codes, engine_repository
from bot.errors import (
    InfrastructureError,
    RegistryAuthError,
    RegistryError,
    RegistryProblem,
    RegistryUnavailable,
    UnknownRegistryHost,
)
from bot.imageref import DOCKER_HUB
from bot.images import ImageRef
from bot.logs import Log

BOX_NAMED_IN = "wercker.yml 'box'"

_STATUS_OF_CODE = {"UNAUTHORIZED": 401, "DENIED": 403, "NAME_UNKNOWN": 404, "MANIFEST_UNKNOWN": 404}
_LOOKUP = re.compile(r"\blookup (\S+?)(?: on \S+)?: no such host\b")


def pull(
    engine: EngineHandle,
    box: ImageRef,
    log: Log,
    what: str = "box",
    named_in: str = BOX_NAMED_IN,
) -> str:
    """Pulls ``box`` with its own credentials; returns the local reference. ``what`` names
    the image in messages (``box``, ``service 'db'``); ``named_in`` says where the user named
    it, for a host that does not resolve. A loopback registry works over plain HTTP: the
    engine treats 127.0.0.0/8 as insecure. Raises a ``RegistryProblem`` (``pull_error``)
    when the engine could not pull, ``InfrastructureError`` when the engine itself failed."""
    repo = engine_repository(box.registry, box.repository)
    auth = auth_config(box.registry, box.auth, engine.credentials)
    hidden = [*box.auth.secrets(), auth.get("password", "")]
    log.info(f"pulling {what} {box}")
    try:
        for line in engine.stream.api.pull(
            repo, tag=box.reference, auth_config=auth, stream=True, decode=True
        ):
            if not isinstance(line, dict):
                continue
            if line.get("id") and line.get("status") and not line.get("progressDetail"):
                log.progress(f"{line['id']}: {line['status']}")
            if "error" in line or "errorDetail" in line:
                detail: dict[str, Any] = line.get("errorDetail") or {}
                code = detail.get("code")
                message = str(detail.get("message") or line.get("error") or "unknown error")
                status = code if isinstance(code, int) and code >= 100 else None
                raise pull_error(box, _scrub(message, hidden), status, what, named_in)
    except APIError as err:
        status = err.response.status_code if err.response is not None else None
        raise pull_error(box, _scrub(_text(err), hidden), status, what, named_in) from None
    except DockerException as err:
        raise InfrastructureError(
            _scrub(f"pulling {what} {box} failed: {_text(err)}", hidden)
        ) from None
    sep = "@" if box.reference.startswith("sha256:") else ":"
    ref = f"{repo}{sep}{box.reference}"
    try:
        engine.control.api.inspect_image(ref)
    except ImageNotFound:
        raise InfrastructureError(
            f"pulling {what} {box} left no image {ref} on the engine"
        ) from None
    return ref


def pull_error(
    image: ImageRef,
    message: str,
    engine_status: int | None,
    what: str = "box",
    named_in: str = BOX_NAMED_IN,
) -> RegistryProblem:
    """The registry error, with its facts (action ``pull``), for the engine's ``message``
    about a failed pull of ``image``; ``engine_status`` is the HTTP status the engine
    answered (None for an error line of its stream). A 4xx of the engine is the registry's
    (404: no such image); its 500 is not, so ``http_status`` then comes from the registry's
    error code, if any. A host that does not resolve is ``UnknownRegistryHost`` when it is
    ``image``'s own (not Docker Hub, which the user never spelled out)."""
    codes = engine_codes(message)
    status = engine_status if engine_status is not None and 400 <= engine_status < 500 else None
    status = status or next((_STATUS_OF_CODE[c] for c in codes if c in _STATUS_OF_CODE), None)
    facts: dict[str, Any] = {
        "registry": image.registry,
        "repository": image.repository,
        "action": "pull",
        "http_status": status,
        "codes": codes,
    }
    text = f"pulling {what} {image} failed: {message}"
    host = unresolved_host(message)
    if host is not None:
        if host.lower() == _host(image.registry).lower() and image.registry != DOCKER_HUB:
            return UnknownRegistryHost.named(
                host, named_in, registry=image.registry, repository=image.repository, action="pull"
            )
        return RegistryUnavailable(text, unresolved_host=host, **facts)
    if status in (401, 403) or {"UNAUTHORIZED", "DENIED"} & set(codes):
        return RegistryAuthError(
            f"{text}; check the credentials for {image.registry} (username and password on "
            f'the image, or [registries."{image.registry}"])',
            **facts,
        )
    if status == 404:
        return RegistryError(f"{text}; check the image name and tag in {named_in}", **facts)
    if status is not None or codes:
        return RegistryError(text, **facts)
    return RegistryUnavailable(text, **facts)


def unresolved_host(message: str) -> str | None:
    """The host DNS said does not exist, when the engine's ``message`` says so; None for
    anything else (a temporary DNS failure included: that is the engine host's DNS, not the
    name).

    Why text: the engine answers a pull whose registry host does not resolve with a 500 and
    Go's resolver error as prose (``dial tcp: lookup HOST on 10.0.0.53:53: no such host``);
    neither its API nor docker-py carries the reason as data. This is the one place that
    reads it."""
    found = _LOOKUP.search(message)
    return found.group(1).rstrip(".") if found else None


def _host(registry: str) -> str:
    """``host`` of ``host:port`` (IPv6 literals in brackets kept whole)."""
    if registry.startswith("["):
        return registry.split("]", 1)[0] + "]"
    return registry.rsplit(":", 1)[0] if registry.count(":") == 1 else registry


def _text(err: BaseException) -> str:
    """The engine's own explanation of ``err``, in one line."""
    explanation = getattr(err, "explanation", None)
    if explanation:
        return str(explanation)
    text = str(err)
    return text.splitlines()[0] if text else type(err).__name__


def _scrub(text: str, hidden: list[str]) -> str:
    for value in sorted((v for v in hidden if v and len(v) >= 4), key=len, reverse=True):
        text = text.replace(value, "****")
    return text
