"""Amazon ECR control plane through boto3: login tokens and repository creation.

Tokens last 12 h; one is cached per (account, region, key id, endpoint) until about an hour
before it expires. Without ``aws_access_key``/``aws_secret_key`` boto3's default chain
(environment, profile, instance role) is used.
"""

from __future__ import annotations

import base64
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.errors import RegistryAuthError, RegistryError, RegistryProblem, RegistryUnavailable
from bot.logs import Log
from bot.masking import Masker
from bot.pushers.model import RegistryAuth, Target
from bot.pushers.target import ECR_HOST, registry_settings_for
from bot.settings import RegistrySettings

REFRESH_BEFORE_EXPIRY = 3600.0
ATTEMPTS = 4
"""Tries of one ECR API call. boto3's own retries are switched off: they are silent, and
every retry must say in the build log why it waits and for how long."""
_BUSY_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "InternalFailure",
        "InternalServerError",
        "ServerException",
    }
)

logger = logging.getLogger(__name__)
Say = Callable[[str], None]


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
    from botocore.config import Config

    return session.client(
        "ecr",
        endpoint_url=endpoint_url or None,
        config=Config(retries={"total_max_attempts": 1, "mode": "standard"}),
    )


def _busy(err: Exception) -> str | None:
    """Why a failed ECR call is worth another try (throttled, a 5xx, no connection), or
    ``None`` when it is not (refused credentials, a missing repository)."""
    from botocore.exceptions import ClientError, ConnectionError, HTTPClientError

    if isinstance(err, ClientError):
        code = str(err.response.get("Error", {}).get("Code", ""))
        status = int(err.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        if code in _BUSY_CODES or status >= 500:
            return f"AWS answered {code or status}"
        return None
    if isinstance(err, ConnectionError | HTTPClientError):
        return f"the ECR API could not be reached ({type(err).__name__})"
    return None


def _calling(call: Callable[[], Any], doing: str, say: Say | None) -> Any:
    """``call()``, tried up to ``ATTEMPTS`` times while AWS is busy or unreachable, each
    retry announced through ``say`` (the build log) with its cause and wait."""
    for attempt in range(1, ATTEMPTS + 1):
        try:
            return call()
        except Exception as err:
            cause = _busy(err)
            if cause is None or attempt == ATTEMPTS:
                raise
            wait = float(2 ** (attempt - 1))
            message = (
                f"{cause} when asked to {doing}; retrying in {wait:g} s "
                f"(attempt {attempt + 1} of {ATTEMPTS})"
            )
            (say or logger.warning)(message)
            time.sleep(wait)
    raise AssertionError("unreachable")  # the loop returns or raises


def _translate(
    err: Exception,
    reg: EcrRegistry,
    doing: str,
    auth: RegistryAuth,
    *,
    action: str,
    repository: str | None = None,
) -> RegistryProblem:
    """The registry error for a failed ECR API call, with its facts (``codes`` holds the AWS
    error code). ``action`` is ``auth``, ``look up repository`` or ``create repository``."""
    from botocore.exceptions import (
        ClientError,
        EndpointConnectionError,
        NoCredentialsError,
        PartialCredentialsError,
    )

    masker = Masker(auth.secrets())
    where = f"ECR {reg.account} in {reg.region}"
    facts: dict[str, Any] = {
        "registry": f"{reg.account}.dkr.ecr.{reg.region}.amazonaws.com",
        "repository": repository,
        "action": action,
    }
    if isinstance(err, NoCredentialsError | PartialCredentialsError):
        return RegistryAuthError(
            f"{where}: no AWS credentials to {doing}; set aws-access-key and aws-secret-key "
            "or give the bot an instance role",
            **facts,
        )
    if isinstance(err, EndpointConnectionError):
        return RegistryUnavailable(
            masker.mask(f"{where}: cannot reach the ECR API to {doing}"), **facts
        )
    if isinstance(err, ClientError):
        code = err.response.get("Error", {}).get("Code", "")
        msg = err.response.get("Error", {}).get("Message", "")
        status = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        facts["http_status"] = int(status) if status else None
        facts["codes"] = (str(code),) if code else ()
        cls: type[RegistryProblem] = RegistryError
        if code in (
            "UnrecognizedClientException",
            "InvalidSignatureException",
            "AccessDeniedException",
            "AccessDenied",
            "ExpiredTokenException",
        ):
            cls = RegistryAuthError
        elif _busy(err) is not None:  # still throttled or failing after the retries
            cls = RegistryUnavailable
        return cls(masker.mask(f"{where}: AWS refused to {doing}: {code}: {msg}"), **facts)
    if _busy(err) is not None:  # botocore's ConnectionError family, after the retries
        return RegistryUnavailable(
            masker.mask(f"{where}: cannot reach the ECR API to {doing}"), **facts
        )
    return RegistryError(masker.mask(f"{where}: failed to {doing}: {type(err).__name__}"), **facts)


def login(
    reg: EcrRegistry, auth: RegistryAuth, endpoint_url: str | None, say: Say | None = None
) -> tuple[str, str]:
    """(username, password) for Basic auth against the registry, from
    ``get_authorization_token``; cached until ~1 h before ``expiresAt``. Retries are
    announced through ``say``."""
    key = (reg.account, reg.region, auth.aws_access_key, endpoint_url or "")
    with _lock:
        hit = _cache.get(key)
        if hit and time.time() < hit[2]:
            return hit[0], hit[1]
    try:
        client = _client(reg, auth, endpoint_url)
        answer = _calling(
            lambda: client.get_authorization_token(registryIds=[reg.account]),
            "get a registry login token",
            say,
        )
        data = answer["authorizationData"][0]
    except Exception as err:
        raise _translate(err, reg, "get a registry login token", auth, action="auth") from None
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
    reg: EcrRegistry,
    repository: str,
    auth: RegistryAuth,
    endpoint_url: str | None,
    say: Say | None = None,
) -> bool:
    """Creates ``repository`` unless it exists. Returns True when it was created. Retries
    are announced through ``say``."""
    client = _client(reg, auth, endpoint_url)
    try:
        _calling(
            lambda: client.describe_repositories(
                registryId=reg.account, repositoryNames=[repository]
            ),
            f"look up repository {repository}",
            say,
        )
        return False
    except Exception as err:
        code = getattr(err, "response", {}).get("Error", {}).get("Code", "")
        if code != "RepositoryNotFoundException":
            raise _translate(
                err,
                reg,
                f"look up repository {repository}",
                auth,
                action="look up repository",
                repository=repository,
            ) from None
    try:
        _calling(
            lambda: client.create_repository(registryId=reg.account, repositoryName=repository),
            f"create repository {repository}",
            say,
        )
    except Exception as err:
        code = getattr(err, "response", {}).get("Error", {}).get("Code", "")
        if code == "RepositoryAlreadyExistsException":
            return False
        raise _translate(
            err,
            reg,
            f"create repository {repository}",
            auth,
            action="create repository",
            repository=repository,
        ) from None
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
    created = ensure_repository(
        reg, target.repository, target.auth, settings.aws_endpoint_url, log.warn
    )
    if created:
        log.info(f"created ECR repository {target.repository} in {reg.region}")
    return created
