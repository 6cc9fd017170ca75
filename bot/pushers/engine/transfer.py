"""Tagging and pushing an image that is on the engine: ``docker push``, its stream read.

Push errors arrive as lines inside a 200 stream; a push without an ``aux.Digest`` line did
not happen. ``auth_config`` is always passed (``{}`` when anonymous).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable, Mapping
from typing import Any

from docker.errors import APIError, DockerException

from bot.engine import (
    CredentialResolver,
    EngineHandle,
    auth_config,
    engine_codes,
    engine_repository,
)
from bot.errors import RegistryAuthError, RegistryError, RegistryProblem, RegistryUnavailable
from bot.logs import Log
from bot.pushers.model import PushResult, Target
from bot.pushers.registry import ecr
from bot.pushers.registry.transport_errors import split_host, unknown_host
from bot.pushers.target import registry_settings_for
from bot.settings import RegistrySettings

# The engine hands back text only. Its registry codes are read by ``bot.engine.engine_codes``
# (shared with box pulls); these words, which carry no code, still mean refused credentials.
_AUTH_TEXT = (
    "unauthorized",
    "denied",
    "authentication required",
    "no basic auth",
    "incorrect username or password",
)
_STATUS = re.compile(r"\bstatus(?: code)?:? ?(\d{3})\b")
_UNRESOLVED_TEXT = ("no such host",)
_UNREACHABLE_TEXT = (
    "connection refused",
    "i/o timeout",
    "dial tcp",
    "network is unreachable",
    "context deadline exceeded",
)


def unhonoured_settings(target: Target, registries: Mapping[str, RegistrySettings]) -> list[str]:
    """The ``[registries]`` settings for ``target``'s host that a push through the engine
    cannot apply: the engine dials the registry itself, with its own daemon config."""
    entry = registry_settings_for(target.registry, registries)
    if entry is None:
        return []
    out: list[str] = []
    if entry.ca_file:
        out.append(f"ca_file = {entry.ca_file!r}")
    if entry.insecure:
        out.append("insecure = true")
    if entry.mirror_of and entry.host.lower() != target.registry.lower():
        out.append(f'mirror_of = {entry.mirror_of!r} (in [registries."{entry.host}"])')
    return out


def warn_unhonoured_settings(
    target: Target, registries: Mapping[str, RegistrySettings], log: Log
) -> None:
    ignored = unhonoured_settings(target, registries)
    if ignored:
        log.warn(
            f"pushing to {target.registry} through the Docker Engine: the engine ignores "
            f"{', '.join(ignored)} from the bot's [registries] settings; it uses its own "
            "daemon config (certs.d, insecure-registries, registry-mirrors) and pushes to "
            f"{target.registry} itself"
        )


def push_image(
    engine: EngineHandle,
    image_id: str,
    target: Target,
    log: Log,
    credentials: CredentialResolver,
) -> PushResult:
    """Tags ``image_id`` with every tag of ``target`` and pushes each one; returns once the
    registry has confirmed the manifest digest. Local tags are removed afterwards.
    ``target.guard_tag()`` runs before each tag is made and pushed (``Target.before_tag``).
    A missing ECR repository is created first when the registry's settings say so, as the
    daemonless pusher does. ``credentials`` is the process's one resolver (``bot.wiring``)."""
    warn_unhonoured_settings(target, engine.registries, log)
    ecr.prepare_repository(target, engine.registries, log)
    repo = engine_repository(target.registry, target.repository)
    auth = auth_config(target.registry, target.auth, credentials)
    secrets = [*target.auth.secrets(), auth.get("password", "")]
    api = engine.stream.api
    digest, size = "", 0
    pushed: list[str] = []
    try:
        for tag in target.tags:
            target.guard_tag()  # before the tag exists on the engine: nothing to undo
            api.tag(image_id, repo, tag, force=True)
            pushed.append(tag)
            tag_digest, tag_size = _push_tag(api, repo, tag, auth, secrets, log, target)
            digest, size = digest or tag_digest, size or tag_size
    except DockerException as err:
        raise RegistryError(
            scrub(f"pushing {repo} failed: {engine_text(err)}", secrets),
            registry=target.registry,
            repository=target.repository,
            action="push",
        ) from None
    finally:
        for tag in pushed:
            remove_image(engine, f"{repo}:{tag}")
    return PushResult(target.registry, target.repository, target.tags, digest, size)


def _push_tag(
    api: Any,
    repo: str,
    tag: str,
    auth: dict[str, str],
    secrets: list[str],
    log: Log,
    target: Target,
) -> tuple[str, int]:
    digest, size = "", 0
    for line in api.push(repo, tag=tag, auth_config=auth, stream=True, decode=True):
        if not isinstance(line, dict):
            continue
        if "error" in line or "errorDetail" in line:
            detail = line.get("errorDetail") or {}
            message = str(detail.get("message") or line.get("error") or "unknown error")
            code = detail.get("code")
            raise engine_push_error(
                scrub(f"{repo}:{tag}: {message}", secrets),
                target,
                http_status=code if isinstance(code, int) and code >= 100 else None,
            )
        aux = line.get("aux")
        if isinstance(aux, dict) and aux.get("Digest"):
            digest, size = str(aux["Digest"]), int(aux.get("Size") or 0)
        status = line.get("status")
        if status and not line.get("progressDetail") and line.get("id"):
            log.progress(f"{line['id']}: {status}")
    if not digest:
        raise RegistryError(
            f"{repo}:{tag}: the engine reported no manifest digest for the push",
            registry=target.registry,
            repository=target.repository,
            action="push",
        )
    return digest, size


def engine_push_error(
    message: str, target: Target, *, http_status: int | None = None
) -> RegistryProblem:
    """The registry error, with its facts, for an error line of the engine's push stream.
    The engine dials ``target.registry`` itself (its registry mirrors are for pulls), so a
    host that does not resolve is the one the step named."""
    lowered = message.lower()
    codes = engine_codes(message)
    status = _STATUS.search(lowered)
    if http_status is None and status is not None:
        http_status = int(status.group(1))
    if http_status is None:
        http_status = 401 if "UNAUTHORIZED" in codes else 403 if "DENIED" in codes else None
    facts: dict[str, Any] = {
        "registry": target.registry,
        "repository": target.repository,
        "action": "push",
        "http_status": http_status,
        "codes": codes,
    }
    if (
        {"UNAUTHORIZED", "DENIED"} & set(codes)
        or http_status in (401, 403)
        or any(text in lowered for text in _AUTH_TEXT)
    ):
        return RegistryAuthError(f"registry refused the push: {message}", **facts)
    if any(text in lowered for text in _UNRESOLVED_TEXT):
        unavailable = RegistryUnavailable(
            f"registry unreachable: {message}",
            unresolved_host=split_host(target.registry),
            **facts,
        )
        return unknown_host(unavailable, target.registry) or unavailable
    if any(text in lowered for text in _UNREACHABLE_TEXT) or (
        http_status is not None and (http_status >= 500 or http_status in (408, 429))
    ):
        return RegistryUnavailable(f"registry unreachable: {message}", **facts)
    if "server gave http response to https client" in lowered:
        return RegistryError(
            f"{message} (the engine only speaks plain HTTP to loopback registries and to "
            "those in its insecure-registries setting)",
            **facts,
        )
    return RegistryError(f"push failed: {message}", **facts)


def remove_image(engine: EngineHandle, ref: str) -> None:
    """Removes ``ref`` from the engine if nothing else holds it; never raises."""
    # Still used by a tag or a container: it goes when they do.
    with contextlib.suppress(DockerException):
        engine.control.api.remove_image(ref, force=False, noprune=False)


def engine_text(err: BaseException) -> str:
    """The engine's own explanation of ``err``, in one line."""
    if isinstance(err, APIError) and err.explanation:
        return str(err.explanation)
    return str(err).splitlines()[0] if str(err) else type(err).__name__


def scrub(text: str, secrets: Iterable[str]) -> str:
    """Registry and engine messages should not echo credentials; make sure of it."""
    for value in sorted((s for s in secrets if s and len(s) >= 4), key=len, reverse=True):
        text = text.replace(value, "****")
    return text
