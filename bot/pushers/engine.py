"""The engine pusher: images made and pushed by a Docker Engine through the ``docker`` SDK.

Used by the docker runner. ``commit_and_push`` commits the pipeline's box container;
``push_built_image`` pushes an image made by ``internal/docker-build``. Both apply the step's
``ImageConfig`` the same way the daemonless pusher does (the base image's config with the
step's options on top), so one wercker.yml gives equivalent images on both runners.

Facts this module is built on (reference/registry-push.md §4.4, checked against Engine 20.10):

* A commit merges the *container's* config into the image: every container env key, its
  ``Cmd`` when the new config has no ``Cmd`` and no ``Entrypoint``, its ``Entrypoint`` when
  the new one is null. So the box container is created with no env of its own (values go to
  each exec) and the commit config is always given in full.
* The config goes through ``conf`` rather than Dockerfile ``changes``: ``ENV``/``LABEL``
  changes are shell-word-parsed and ``$VAR``-expanded by the engine, which would rewrite a
  user's value. ``conf`` is taken literally and also carries ``StopSignal``, which ``changes``
  rejects.
* Push errors arrive as lines inside a 200 stream; a push without an ``aux.Digest`` line did
  not happen. ``auth_config`` is always passed (``{}`` when anonymous).
"""

from __future__ import annotations

import contextlib
import io
import tarfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import docker
from docker.errors import APIError, DockerException, ImageNotFound

from bot.errors import (
    PushError,
    RegistryAuthError,
    RegistryError,
    RegistryUnavailable,
    StepConfigError,
    StepError,
)
from bot.logs import Log
from bot.pushers.model import ImageConfig, PushResult, RegistryAuth, Target
from bot.pushers.registry import ecr
from bot.pushers.target import DOCKER_HUB_ALIASES, registry_settings_for
from bot.settings import RegistrySettings

CredentialResolver = Callable[[str, RegistryAuth], tuple[str, str]]
"""``(registry host, auth) -> (username, password)`` for the engine to present; see
``registry_credentials`` (the docker runner's default) and ``basic_credentials``."""

_AUTH_WORDS = (
    "unauthorized",
    "denied",
    "authentication required",
    "no basic auth",
    "incorrect username or password",
    "401",
    "403",
)
_UNREACHABLE_WORDS = (
    "connection refused",
    "no such host",
    "i/o timeout",
    "dial tcp",
    "network is unreachable",
    "context deadline exceeded",
)


@dataclass
class EngineHandle:
    """What the pusher needs from a docker session: a ``control`` client (with a read
    timeout), a ``stream`` client (without: pushes and builds can be silent for a long
    time), the network builds run on, how credentials are resolved, and the bot's
    ``[registries]`` settings (ECR repository creation; the TLS/mirror settings the engine
    cannot apply are warned about)."""

    control: docker.DockerClient
    stream: docker.DockerClient
    network: str = "none"
    credentials: CredentialResolver | None = None
    registries: Mapping[str, RegistrySettings] = field(default_factory=dict)


def registry_credentials(registries: Mapping[str, RegistrySettings]) -> CredentialResolver:
    """The resolver the daemonless pusher's rules give (``credentials_for``): ECR login
    tokens through boto3, Azure service principals, gcr.io ``_json_key`` newlines, else the
    username/password as written. ``registries`` supplies per-host settings (the ECR
    endpoint URL)."""

    def resolve(registry: str, auth: RegistryAuth) -> tuple[str, str]:
        from bot.pushers.registry.auth import credentials_for
        from bot.pushers.registry.endpoint import resolve_endpoint

        creds = credentials_for(resolve_endpoint(registry, "https", registries), auth)
        return creds.username, creds.password

    return resolve


def basic_credentials(registry: str, auth: RegistryAuth) -> tuple[str, str]:
    """Username/password as written, or an Azure service principal. ECR needs a resolver
    that can fetch a login token; without one the push fails with a clear message."""
    if auth.azure_client_id or auth.azure_client_secret:
        return auth.azure_client_id, auth.azure_client_secret
    if auth.aws_access_key or auth.aws_secret_key or auth.aws_region or auth.aws_registry_id:
        raise StepConfigError(
            f"ECR credentials for {registry} need the ECR login resolver; "
            "it is not configured for the docker runner"
        )
    return auth.username, auth.password


def auth_config(
    registry: str, auth: RegistryAuth, resolver: CredentialResolver | None = None
) -> dict[str, str]:
    """The ``auth_config`` for pull and push: ``{}`` when anonymous, never ``None``."""
    username, password = (resolver or basic_credentials)(registry, auth)
    if not (username or password):
        return {}
    config = {"username": username, "password": password}
    if registry not in DOCKER_HUB_ALIASES:
        config["serveraddress"] = registry
    return config


def engine_repository(registry: str, repository: str) -> str:
    """The name the engine pushes to: Docker Hub names carry no host (the engine adds
    ``docker.io``); any other registry is ``host[:port]/repository``."""
    if registry.lower() in DOCKER_HUB_ALIASES:
        return repository
    return f"{registry}/{repository}"


def image_conf(base: dict[str, Any], config: ImageConfig) -> dict[str, Any]:
    """The full image config: ``base`` (the base image's ``Config``) with the step's options
    on top. ``None`` in ``config`` keeps the base value; env, labels, ports and volumes add to
    the base's. Every field is set explicitly, so nothing from the build container leaks."""
    env = _merge_env(base.get("Env") or [], config.env)
    ports: dict[str, dict[str, Any]] = {key: {} for key in base.get("ExposedPorts") or {}}
    ports.update((_port(p), {}) for p in config.ports)
    volumes: dict[str, dict[str, Any]] = {key: {} for key in base.get("Volumes") or {}}
    volumes.update((v, {}) for v in config.volumes)
    labels = dict(base.get("Labels") or {})
    labels.update(config.labels)
    conf: dict[str, Any] = {
        "Env": env,
        "Cmd": config.cmd if config.cmd is not None else base.get("Cmd"),
        "Entrypoint": (
            config.entrypoint if config.entrypoint is not None else base.get("Entrypoint")
        ),
        "ExposedPorts": ports or None,
        "Volumes": volumes or None,
        "Labels": labels,
        "User": config.user if config.user is not None else base.get("User") or "",
        "WorkingDir": (
            config.working_dir if config.working_dir is not None else base.get("WorkingDir") or ""
        ),
    }
    stop = config.stop_signal if config.stop_signal is not None else base.get("StopSignal")
    if stop:
        conf["StopSignal"] = stop
    for key in ("Healthcheck", "OnBuild", "Shell"):
        if base.get(key):
            conf[key] = base[key]
    return conf


def commit_and_push(
    engine: EngineHandle,
    container_id: str,
    base: dict[str, Any],
    config: ImageConfig,
    target: Target,
    log: Log,
) -> PushResult:
    """Commits the box container with ``config`` applied over the box image's config
    ``base`` and pushes it to every tag of ``target``. The committed image is removed from
    the engine afterwards; the box layers stay cached."""
    conf = image_conf(base, config)
    log.info(f"committing the box container as {target.repository}")
    try:
        committed = engine.control.api.commit(
            container_id, conf=conf, author=config.author, message=config.message
        )["Id"]
    except DockerException as err:
        raise PushError(f"committing the box container failed: {_engine_text(err)}") from None
    try:
        image_id = _clear_inherited_command(engine, committed, conf, config, log)
    except (DockerException, StepError) as err:
        _remove_image(engine, committed)
        raise PushError(f"clearing the image's command failed: {err}") from None
    try:
        return push_image(engine, image_id, target, log)
    finally:
        _remove_image(engine, image_id)


def push_built_image(
    session: object, image_id: str, config: ImageConfig, target: Target, log: Log
) -> PushResult:
    """Pushes an image built by ``internal/docker-build`` in ``session`` (a docker runner
    session), with ``config`` applied over the built image's own config. The built image
    stays on the engine until the session closes: another push step may use it."""
    engine = getattr(session, "engine", None)
    if not isinstance(engine, EngineHandle):
        raise StepConfigError(
            "image-name needs an image from internal/docker-build, which needs a Docker "
            'Engine ([runner] kind = "docker")'
        )
    try:
        base = engine.control.api.inspect_image(image_id)["Config"] or {}
        applied = _apply_config(engine, image_id, base, config, log)
    except ImageNotFound:
        raise StepConfigError(
            f"the image built as {image_id[:19]} is gone from the engine"
        ) from None
    except DockerException as err:
        raise PushError(f"applying the image config failed: {_engine_text(err)}") from None
    try:
        return push_image(engine, applied, target, log)
    finally:
        if applied != image_id:
            _remove_image(engine, applied)


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


def push_image(engine: EngineHandle, image_id: str, target: Target, log: Log) -> PushResult:
    """Tags ``image_id`` with every tag of ``target`` and pushes each one; returns once the
    registry has confirmed the manifest digest. Local tags are removed afterwards. A missing
    ECR repository is created first when the registry's settings say so, as the daemonless
    pusher does."""
    warn_unhonoured_settings(target, engine.registries, log)
    ecr.prepare_repository(target, engine.registries, log)
    repo = engine_repository(target.registry, target.repository)
    auth = auth_config(target.registry, target.auth, engine.credentials)
    secrets = [*target.auth.secrets(), auth.get("password", "")]
    api = engine.stream.api
    digest, size = "", 0
    pushed: list[str] = []
    try:
        for tag in target.tags:
            api.tag(image_id, repo, tag, force=True)
            pushed.append(tag)
            tag_digest, tag_size = _push_tag(api, repo, tag, auth, secrets, log)
            digest, size = digest or tag_digest, size or tag_size
    except DockerException as err:
        raise RegistryError(
            _scrub(f"pushing {repo} failed: {_engine_text(err)}", secrets)
        ) from None
    finally:
        for tag in pushed:
            _remove_image(engine, f"{repo}:{tag}")
    return PushResult(target.registry, target.repository, target.tags, digest, size)


def _push_tag(
    api: Any, repo: str, tag: str, auth: dict[str, str], secrets: list[str], log: Log
) -> tuple[str, int]:
    digest, size = "", 0
    for line in api.push(repo, tag=tag, auth_config=auth, stream=True, decode=True):
        if not isinstance(line, dict):
            continue
        if "error" in line or "errorDetail" in line:
            detail = line.get("errorDetail") or {}
            message = str(detail.get("message") or line.get("error") or "unknown error")
            raise _classify(_scrub(f"{repo}:{tag}: {message}", secrets))
        aux = line.get("aux")
        if isinstance(aux, dict) and aux.get("Digest"):
            digest, size = str(aux["Digest"]), int(aux.get("Size") or 0)
        status = line.get("status")
        if status and not line.get("progressDetail") and line.get("id"):
            log.progress(f"{line['id']}: {status}")
    if not digest:
        raise RegistryError(f"{repo}:{tag}: the engine reported no manifest digest for the push")
    return digest, size


def _classify(message: str) -> RegistryError:
    lowered = message.lower()
    if any(word in lowered for word in _AUTH_WORDS):
        return RegistryAuthError(f"registry refused the push: {message}")
    if any(word in lowered for word in _UNREACHABLE_WORDS):
        return RegistryUnavailable(f"registry unreachable: {message}")
    if "server gave http response to https client" in lowered:
        return RegistryError(
            f"{message} (the engine only speaks plain HTTP to loopback registries and to "
            "those in its insecure-registries setting)"
        )
    return RegistryError(f"push failed: {message}")


def _apply_config(
    engine: EngineHandle, image_id: str, base: dict[str, Any], config: ImageConfig, log: Log
) -> str:
    """A new image with ``config`` over ``base``, through a created (never started)
    container; returns ``image_id`` itself when there is nothing to change."""
    conf = image_conf(base, config)
    if _same_config(base, conf) and config.author is None and config.message is None:
        return image_id
    api = engine.control.api
    needs_command = not (base.get("Cmd") or base.get("Entrypoint"))
    container = api.create_container(image_id, command=["true"] if needs_command else None)
    try:
        new_id = api.commit(
            container["Id"], conf=conf, author=config.author, message=config.message
        )["Id"]
    finally:
        api.remove_container(container["Id"], force=True)
    return _clear_inherited_command(engine, new_id, conf, config, log)


def _same_config(base: dict[str, Any], conf: dict[str, Any]) -> bool:
    return all(_norm(base.get(key)) == _norm(value) for key, value in conf.items())


def _norm(value: Any) -> Any:
    return value or None


def _clear_inherited_command(
    engine: EngineHandle, image_id: str, conf: dict[str, Any], config: ImageConfig, log: Log
) -> str:
    """When the image should have neither Cmd nor Entrypoint, the commit has inherited the
    container's keepalive command (the engine fills an empty Cmd from the container). A
    one-line build clears it: the builder's metadata commit does not merge."""
    if conf.get("Cmd") or conf.get("Entrypoint"):
        return image_id
    got = engine.control.api.inspect_image(image_id)["Config"] or {}
    if not (got.get("Cmd") or got.get("Entrypoint")):
        return image_id
    lines = [f"FROM {image_id}", "ENTRYPOINT []"]
    if config.author:
        lines.insert(1, "MAINTAINER " + " ".join(config.author.split()))
    new_id = build_image(engine, _dockerfile_context("\n".join(lines) + "\n"), {}, log, quiet=True)
    _remove_image(engine, image_id)
    return new_id


def build_image(
    engine: EngineHandle,
    context: bytes | Iterable[bytes] | str,
    options: dict[str, Any],
    log: Log,
    *,
    quiet: bool = False,
) -> str:
    """Runs a build on the engine and returns the image id. ``context`` is a directory
    path or a tar; ``options`` are extra ``APIClient.build`` keyword arguments. Build output
    goes to ``log``; an error line fails the step (``StepError``) with the builder's message."""
    kwargs: dict[str, Any] = {
        "rm": True,
        "forcerm": True,
        "decode": True,
        "network_mode": engine.network,
        **options,
    }
    if isinstance(context, str):
        kwargs["path"] = context
    else:
        kwargs["fileobj"] = io.BytesIO(context) if isinstance(context, bytes) else context
        kwargs["custom_context"] = True
    image_id = ""
    for line in _lines(engine.stream.api.build(**kwargs)):
        if "error" in line or "errorDetail" in line:
            detail = line.get("errorDetail") or {}
            raise StepError(f"docker build failed: {detail.get('message') or line.get('error')}")
        aux = line.get("aux")
        if isinstance(aux, dict) and aux.get("ID"):
            image_id = str(aux["ID"])
        if "stream" in line and not quiet:
            log.output(str(line["stream"]))
    if not image_id:
        raise StepError("docker build finished without an image id")
    return image_id


def _lines(stream: Iterable[Any]) -> Iterator[dict[str, Any]]:
    for line in stream:
        if isinstance(line, dict):
            yield line


def _dockerfile_context(dockerfile: str) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        data = dockerfile.encode()
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _merge_env(base: list[str], extra: dict[str, str]) -> list[str]:
    """``base`` (``K=V`` strings) with ``extra`` replacing same-named entries in place and
    new ones appended in order."""
    out: list[str] = []
    seen: set[str] = set()
    for item in base:
        key = item.partition("=")[0]
        if key in extra:
            out.append(f"{key}={extra[key]}")
            seen.add(key)
        else:
            out.append(item)
    out.extend(f"{k}={v}" for k, v in extra.items() if k not in seen)
    return out


def _port(port: str) -> str:
    return port if "/" in port else f"{port}/tcp"


def _remove_image(engine: EngineHandle, ref: str) -> None:
    # Still used by a tag or a container: it goes when they do.
    with contextlib.suppress(DockerException):
        engine.control.api.remove_image(ref, force=False, noprune=False)


def _engine_text(err: BaseException) -> str:
    if isinstance(err, APIError) and err.explanation:
        return str(err.explanation)
    return str(err).splitlines()[0] if str(err) else type(err).__name__


def _scrub(text: str, secrets: Iterable[str]) -> str:
    """Registry and engine messages should not echo credentials; make sure of it."""
    for value in sorted((s for s in secrets if s and len(s) >= 4), key=len, reverse=True):
        text = text.replace(value, "****")
    return text
