"""Where a push goes: a push step's options, or a box id, resolved into registry terms.

Rules are behaviour.md §7. Everything here is pure (no network); the registry client decides
later how to reach the host (``mirror_of``, CA files, HTTPS fallback) and which credentials
apply.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass

from bot.errors import StepConfigError

# The reference grammar (hosts, tags, repository names) is bot.imageref's, shared with lint.
from bot.imageref import (
    DOCKER_HUB,
    DOCKER_HUB_ALIASES,
    check_repository,
    looks_like_host,
    sanitize_tag,
    split_image_ref,
    without_reference,
)
from bot.logs import Log
from bot.pushers.model import ImageRef, RegistryAuth, Scheme, Target
from bot.settings import RegistrySettings

ECR_HOST = re.compile(r"^(\d{12})\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?$")

_TAG_SPLIT = re.compile(r"[\s,]+")
_VERSION_SUFFIX = re.compile(r"^v[12]$")

_AWS_OPTIONS = ("aws-access-key", "aws-secret-key", "aws-region", "aws-registry-id")
_AZURE_OPTIONS = ("azure-client-id", "azure-client-secret", "azure-login-server")


def is_loopback(host: str) -> bool:
    """``host`` (no port) is ``localhost``, in ``127.0.0.0/8`` or ``::1``."""
    name = host.strip("[]").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def split_host_port(hostport: str) -> tuple[str, str]:
    """``127.0.0.1:5000`` → (``127.0.0.1``, ``5000``); ``[::1]:5000`` → (``::1``, ``5000``)."""
    if hostport.startswith("["):
        host, _, rest = hostport[1:].partition("]")
        return host, rest.lstrip(":")
    host, _, port = hostport.partition(":")
    return host, port


def registry_settings_for(
    host: str, registries: Mapping[str, RegistrySettings]
) -> RegistrySettings | None:
    """The ``[registries."host"]`` entry for ``host`` (``host:port`` first, then the bare host),
    else the entry that declares itself ``mirror_of`` that host."""
    host = host.lower()
    bare, _ = split_host_port(host)
    keys = [host, bare]
    if host in DOCKER_HUB_ALIASES:
        keys += sorted(DOCKER_HUB_ALIASES - {""})
    for key in keys:
        if key in registries:
            return registries[key]
    for entry in registries.values():
        if entry.mirror_of and entry.mirror_of.lower() in keys:
            return entry
    return None


def default_scheme(
    host: str, registries: Mapping[str, RegistrySettings], explicit: str | None = None
) -> Scheme:
    """``http://`` → plain HTTP; ``https://`` → HTTPS; no scheme: loopback hosts and hosts
    marked ``insecure`` → ``auto`` (HTTPS, falling back to HTTP), others HTTPS."""
    if explicit == "http":
        return "http"
    if explicit == "https":
        return "https"
    entry = registry_settings_for(host, registries)
    named_directly = entry is not None and entry.host.lower() in (host, split_host_port(host)[0])
    if entry is not None and entry.insecure and named_directly:
        return "auto"
    return "auto" if is_loopback(split_host_port(host)[0]) else "https"


@dataclass(frozen=True)
class _Registry:
    host: str  # empty: not given
    scheme: str | None  # "http", "https" or None when written without one
    path: str  # a namespace written after the host (OCIR ``iad.ocir.io/tenancy``)


def _parse_registry(text: str) -> _Registry:
    text = text.strip()
    scheme: str | None = None
    match = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*)://", text)
    if match:
        scheme = match.group(1).lower()
        if scheme not in ("http", "https"):
            raise StepConfigError(f"registry {text!r}: only http:// and https:// are supported")
        text = text[match.end() :]
    host, _, path = text.partition("/")
    parts = [p for p in path.split("/") if p]
    if parts and _VERSION_SUFFIX.match(parts[-1]):
        parts.pop()
    return _Registry(host.lower(), scheme, "/".join(parts))


def _strip_reference(name: str, log: Log) -> str:
    """Drops a ``:tag`` or ``@digest`` written inside ``repository`` (Wercker drops it too)."""
    base, at, _ = name.partition("@")
    if at:
        log.warn(f"repository {name!r}: the digest is ignored; set tags with the tag option")
        name = base
    pieces = name.rsplit("/", 1)
    if ":" in pieces[-1]:
        log.warn(f"repository {name!r}: the ':tag' part is ignored; use the tag option")
        pieces[-1] = pieces[-1].split(":", 1)[0]
        name = "/".join(pieces)
    return name


def _split_tags(raw: str, default_tag: str, log: Log) -> tuple[str, ...]:
    pieces = [p for p in _TAG_SPLIT.split(raw) if p] or [default_tag]
    tags: list[str] = []
    for piece in pieces:
        tag = sanitize_tag(piece)
        if tag != piece:
            log.info(f"tag {piece!r} is not a valid Docker tag; using {tag!r}")
        if tag not in tags:
            tags.append(tag)
    return tuple(tags)


def _option(options: Mapping[str, str], name: str) -> str:
    return (options.get(name) or "").strip()


def _auth_from_options(
    options: Mapping[str, str], host: str, registries: Mapping[str, RegistrySettings]
) -> RegistryAuth:
    entry = registry_settings_for(host, registries)
    username = options.get("username") or ""
    password = options.get("password") or ""
    if not username and not password and entry is not None:
        username, password = entry.username or "", entry.password or ""
    return RegistryAuth(
        username=username,
        password=password,
        aws_access_key=_option(options, "aws-access-key"),
        aws_secret_key=_option(options, "aws-secret-key"),
        aws_region=_option(options, "aws-region"),
        aws_registry_id=_option(options, "aws-registry-id"),
        azure_client_id=_option(options, "azure-client-id"),
        azure_client_secret=options.get("azure-client-secret") or "",
        azure_login_server=_option(options, "azure-login-server"),
    )


def _ecr_host(options: Mapping[str, str], repo_host: str) -> str | None:
    """The ECR host the aws-* options point at, or None when they are not used.

    The access key pair is all-or-nothing (without it boto3's own chain is used); region and
    registry id come from the options or from an ECR host written in ``repository``.
    """
    given = {name: _option(options, name) for name in _AWS_OPTIONS}
    if not any(given.values()):
        return None
    if bool(given["aws-access-key"]) != bool(given["aws-secret-key"]):
        absent = "aws-secret-key" if given["aws-access-key"] else "aws-access-key"
        raise StepConfigError(
            f"ECR: {absent} is missing; give both aws-access-key and aws-secret-key, "
            "or neither to use the host's AWS credentials (instance role, environment)"
        )
    match = ECR_HOST.match(repo_host) if repo_host else None
    if match:
        return repo_host
    missing = [n for n in ("aws-region", "aws-registry-id") if not given[n]]
    if missing:
        raise StepConfigError(
            f"ECR: {' and '.join(missing)} missing; the registry host is "
            "<aws-registry-id>.dkr.ecr.<aws-region>.amazonaws.com"
        )
    if not re.fullmatch(r"\d{12}", given["aws-registry-id"]):
        raise StepConfigError("ECR: aws-registry-id must be the 12-digit AWS account id")
    return f"{given['aws-registry-id']}.dkr.ecr.{given['aws-region'].lower()}.amazonaws.com"


def _azure_host(options: Mapping[str, str]) -> str | None:
    given = {name: _option(options, name) for name in _AZURE_OPTIONS}
    if not any(given.values()):
        return None
    missing = [name for name, value in given.items() if not value]
    if missing:
        raise StepConfigError(
            f"Azure: {', '.join(missing)} missing; azure-client-id, azure-client-secret and "
            "azure-login-server are all needed"
        )
    return _parse_registry(given["azure-login-server"]).host


def resolve_target(
    options: Mapping[str, str],
    *,
    default_tag: str,
    registries: Mapping[str, RegistrySettings],
    log: Log,
) -> Target:
    """Turns a push step's already-expanded options into a ``Target`` (behaviour §7).

    ``default_tag`` is used when ``tag`` is empty (the caller passes the branch or git tag
    name). Raises ``StepConfigError`` for a missing or invalid repository, an unsupported
    scheme, or a partial ECR/Azure credential set.
    """
    raw_repo = _option(options, "repository")
    if not raw_repo:
        raise StepConfigError("repository is not set; give the image name, e.g. acme/app")
    registry = _parse_registry(options.get("registry") or "")
    name = _strip_reference(raw_repo, log)
    if "://" in name:
        raise StepConfigError(
            f"repository {raw_repo!r}: put the scheme in the registry option, not in repository"
        )
    first, _, rest = name.partition("/")
    repo_host = ""
    if rest and looks_like_host(first):
        repo_host, name = first.lower(), rest
        if (
            registry.host
            and registry.host != repo_host
            and not (registry.host in DOCKER_HUB_ALIASES and repo_host in DOCKER_HUB_ALIASES)
        ):
            log.info(f"repository names host {repo_host}; it wins over registry {registry.host}")
    host, scheme_word, name = _target_host(options, registry, repo_host, name)
    lowered = name.lower()
    if lowered != name:
        log.info(f"repository {name!r} lower-cased to {lowered!r}")
    check_repository(lowered, f"repository {raw_repo!r}")
    tags = _split_tags(options.get("tag") or "", default_tag, log)
    return Target(
        registry=host,
        repository=lowered,
        tags=tags,
        scheme=default_scheme(host, registries, scheme_word),
        auth=_auth_from_options(options, host, registries),
    )


def _target_host(
    options: Mapping[str, str], registry: _Registry, repo_host: str, name: str
) -> tuple[str, str | None, str]:
    """Where a push goes: ``(host, scheme word or None, repository name)``. An ECR host
    (from the step's aws options) comes first, then Azure's login server, then the host the
    repository names, then the ``registry`` option (whose path prefixes the name). Docker
    Hub's aliases become ``DOCKER_HUB``, with ``library/`` for a one-part name."""
    ecr = _ecr_host(options, repo_host)
    azure = _azure_host(options) if ecr is None else None
    if ecr is not None:
        host, scheme_word = ecr, None
    elif azure is not None:
        host, scheme_word = (repo_host or azure), None
    elif repo_host:
        same = repo_host == registry.host
        host, scheme_word = repo_host, (registry.scheme if same else None)
    else:
        host, scheme_word = registry.host, registry.scheme
        if registry.path:
            # OCIR-style `registry: iad.ocir.io/tenancy` names a namespace, not just a host.
            name = f"{registry.path}/{name}"
    if host in DOCKER_HUB_ALIASES:
        host = DOCKER_HUB
        if "/" not in name:
            name = f"library/{name}"
        scheme_word = "https"
    return host, scheme_word, name


def resolve_box(
    box_id: str,
    options: Mapping[str, str],
    *,
    registries: Mapping[str, RegistrySettings],
    log: Log,
) -> ImageRef:
    """A box's already-expanded id and options → the image to pull, and as whom.

    As in Wercker (wercker-spec §1.5), the registry and repository are inferred exactly as
    for docker-push: a host in the id wins, else ``registry``; the ``aws-*`` set names an
    ECR host, the ``azure-*`` set the login server; missing credentials come from
    ``[registries."host"]``. The id's tag or digest is kept as the reference."""
    parsed = parse_image_ref(box_id, auth=RegistryAuth(), registries=registries)
    if re.match(r"^https?://", box_id.strip(), re.IGNORECASE):
        auth = _auth_from_options(options, parsed.registry, registries)
        return ImageRef(parsed.registry, parsed.repository, parsed.reference, parsed.scheme, auth)
    target = resolve_target(
        {**options, "repository": without_reference(box_id), "tag": ""},
        default_tag="latest",
        registries=registries,
        log=log,
    )
    return ImageRef(
        target.registry, target.repository, parsed.reference, target.scheme, target.auth
    )


def parse_image_ref(
    text: str, *, auth: RegistryAuth, registries: Mapping[str, RegistrySettings]
) -> ImageRef:
    """Parses a box id such as ``busybox``, ``127.0.0.1:5000/library/busybox:1.36`` or
    ``quay.io/x/y@sha256:…`` into an ``ImageRef``: the grammar is ``bot.imageref``'s
    (``split_image_ref``), the scheme comes from ``registries`` unless written. Raises
    ``StepConfigError`` on a malformed reference.
    """
    name = split_image_ref(text)
    return ImageRef(
        registry=name.host,
        repository=name.repository,
        reference=name.reference,
        scheme=default_scheme(name.host, registries, name.scheme),
        auth=auth,
    )
