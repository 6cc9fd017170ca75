"""Amazon ECR control plane through boto3: login tokens and repository creation.

Tokens last 12 h; one is cached per (account, region, key id, endpoint) until about an hour
before it expires. Without ``aws_access_key``/``aws_secret_key`` boto3's default chain
(environment, profile, instance role) is used.
"""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.errors import RegistryAuthError, RegistryError, RegistryUnavailable
from bot.logs import Log
from bot.masking import Masker
from bot.pushers.model import RegistryAuth, Target
from bot.pushers.target import ECR_HOST, registry_settings_for
from bot.settings import RegistrySettings

REFRESH_BEFORE_EXPIRY = 3600.0


@dataclass(frozen=True)
class EcrRegistry:
    account: str
    region: str


def ecr_registry(host: str) -> EcrRegistry | None:
    """The ECR account and region for ``host``, or None when this is not ECR."""
    match = ECR_HOST.match(host.lower())
    if match:
        return EcrRegistry(match.group(1), match.group(2))
    return None


_cache: dict[tuple[str, ...], tuple[str, str, float]] = {}
_lock = threading.Lock()


def _client(reg: EcrRegistry, auth: RegistryAuth, endpoint_url: str | None) -> Any:
    import boto3  # imported lazily: only ECR users pay for it

    session = boto3.session.Session(
        aws_access_key_id=auth.aws_access_key or None,
        aws_secret_access_key=auth.aws_secret_key or None,
        region_name=auth.aws_region or reg.region,
    )
    return session.client("ecr", endpoint_url=endpoint_url or None)


def _translate(err: Exception, reg: EcrRegistry, doing: str, auth: RegistryAuth) -> RegistryError:
    from botocore.exceptions import (
        ClientError,
        EndpointConnectionError,
        NoCredentialsError,
        PartialCredentialsError,
    )

    masker = Masker(auth.secrets())
    where = f"ECR {reg.account} in {reg.region}"
    if isinstance(err, NoCredentialsError | PartialCredentialsError):
        return RegistryAuthError(
            f"{where}: no AWS credentials to {doing}; set aws-access-key and aws-secret-key "
            "or give the bot an instance role"
        )
    if isinstance(err, EndpointConnectionError):
        return RegistryUnavailable(masker.mask(f"{where}: cannot reach the ECR API to {doing}"))
    if isinstance(err, ClientError):
        code = err.response.get("Error", {}).get("Code", "")
        msg = err.response.get("Error", {}).get("Message", "")
        cls: type[RegistryError] = RegistryError
        if code in (
            "UnrecognizedClientException",
            "InvalidSignatureException",
            "AccessDeniedException",
            "AccessDenied",
            "ExpiredTokenException",
        ):
            cls = RegistryAuthError
        return cls(masker.mask(f"{where}: AWS refused to {doing}: {code}: {msg}"))
    return RegistryError(masker.mask(f"{where}: failed to {doing}: {type(err).__name__}"))


def login(reg: EcrRegistry, auth: RegistryAuth, endpoint_url: str | None) -> tuple[str, str]:
    """(username, password) for Basic auth against the registry, from
    ``get_authorization_token``; cached until ~1 h before ``expiresAt``."""
    key = (reg.account, reg.region, auth.aws_access_key, endpoint_url or "")
    with _lock:
        hit = _cache.get(key)
        if hit and time.time() < hit[2]:
            return hit[0], hit[1]
    try:
        answer = _client(reg, auth, endpoint_url).get_authorization_token(registryIds=[reg.account])
        data = answer["authorizationData"][0]
    except Exception as err:
        raise _translate(err, reg, "get a registry login token", auth) from None
    decoded = base64.b64decode(data["authorizationToken"]).decode()
    username, _, password = decoded.partition(":")
    expires = data.get("expiresAt")
    until = (
        expires.timestamp() - REFRESH_BEFORE_EXPIRY
        if isinstance(expires, datetime)
        else time.time() + 11 * 3600
    )
    with _lock:
        _cache[key] = (username, password, until)
    return username, password


def ensure_repository(
    reg: EcrRegistry, repository: str, auth: RegistryAuth, endpoint_url: str | None
) -> bool:
    """Creates ``repository`` unless it exists. Returns True when it was created."""
    client = _client(reg, auth, endpoint_url)
    try:
        client.describe_repositories(registryId=reg.account, repositoryNames=[repository])
        return False
    except Exception as err:
        code = getattr(err, "response", {}).get("Error", {}).get("Code", "")
        if code != "RepositoryNotFoundException":
            raise _translate(err, reg, f"look up repository {repository}", auth) from None
    try:
        client.create_repository(registryId=reg.account, repositoryName=repository)
    except Exception as err:
        code = getattr(err, "response", {}).get("Error", {}).get("Code", "")
        if code == "RepositoryAlreadyExistsException":
            return False
        raise _translate(err, reg, f"create repository {repository}", auth) from None
    return True


def prepare_repository(
    target: Target, registries: Mapping[str, RegistrySettings], log: Log
) -> bool:
    """Before a push to ``target`` (either pusher): when it is an ECR host whose
    ``[registries]`` entry says ``create_repository = true``, creates the repository unless it
    exists. Returns True when it was created."""
    reg = ecr_registry(target.registry)
    settings = registry_settings_for(target.registry, registries)
    if reg is None or settings is None or not settings.create_repository:
        return False
    created = ensure_repository(reg, target.repository, target.auth, settings.aws_endpoint_url)
    if created:
        log.info(f"created ECR repository {target.repository} in {reg.region}")
    return created
