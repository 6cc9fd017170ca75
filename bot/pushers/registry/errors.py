"""Registry answers turned into ``RegistryError``s a user can act on.

Messages name the registry host, the action and the repository, then the registry's own
words (``errors[]`` of a JSON body, or the first line of a text body) and, where we know one,
a hint. Every message goes through a ``Masker`` holding the credentials in play, and URLs are
cut before their query (pre-signed blob URLs carry signatures).
"""

from __future__ import annotations

import json
from collections.abc import Iterable

import requests

from bot.errors import (
    RegistryAuthError,
    RegistryError,
    RegistryProblem,
    RegistryUnavailable,
)
from bot.masking import Masker

_MAX_DETAIL = 300

_HINTS = {
    "NAME_UNKNOWN": "the repository does not exist; create it first (ECR: set "
    "create_repository = true for the registry)",
    "NAME_INVALID": "the repository name is not valid for this registry",
    "TOOMANYREQUESTS": "the registry rate-limits this account; retry later or log in",
    "MANIFEST_BLOB_UNKNOWN": "a layer the manifest names is missing in the registry",
    "MANIFEST_INVALID": "the registry rejected the manifest",
    "DENIED": "the credentials are valid but lack permission for this repository",
}


def action_of(phrase: str) -> str:
    """The ``action`` fact for a message's verb phrase: ``push to`` → ``push``, ``pull
    latest from`` → ``pull``, ``connect``/``answer for`` → ``ping``; others as they are."""
    first = phrase.split(" ", 1)[0]
    if first in ("push", "pull"):
        return first
    if phrase in ("connect", "answer for", ""):
        return "ping"
    return phrase


def registry_codes(resp: requests.Response) -> list[str]:
    """The ``errors[].code`` values of a registry error body (empty when not JSON)."""
    return [code for code, _ in _errors(resp)]


def _errors(resp: requests.Response) -> list[tuple[str, str]]:
    try:
        body = json.loads(resp.content[:65536] or b"null")
    except (ValueError, UnicodeDecodeError):
        return []
    out: list[tuple[str, str]] = []
    if isinstance(body, dict):
        for item in body.get("errors") or []:
            if isinstance(item, dict):
                out.append((str(item.get("code") or ""), str(item.get("message") or "")))
        # token endpoints answer {"details": "..."} or {"error": "...", "error_description"}
        for key in ("details", "error_description", "error", "message"):
            if not out and isinstance(body.get(key), str):
                out.append(("", body[key]))
    return out


def describe_body(resp: requests.Response) -> str:
    """The registry's own words for an error response, short and on one line."""
    parts = [f"{code}: {msg}" if code and msg else code or msg for code, msg in _errors(resp)]
    text = "; ".join(p for p in parts if p)
    if not text:
        raw = resp.content[: _MAX_DETAIL * 2].decode("utf-8", "replace").strip()
        first = raw.splitlines()[0].strip() if raw else ""
        text = first if first and not first.startswith("<") else ""
    text = text or (resp.reason or f"HTTP {resp.status_code}")
    return " ".join(text.split())[:_MAX_DETAIL]


def safe_url(url: str) -> str:
    """``url`` without query or fragment: upload states and pre-signed signatures stay out."""
    return url.split("?", 1)[0].split("#", 1)[0]


def error_for_response(
    resp: requests.Response,
    *,
    registry: str,
    action: str,
    repository: str | None,
    secrets: Iterable[str] = (),
    username: str | None = None,
) -> RegistryProblem:
    """The exception for a failed registry response.

    ``action`` is a verb phrase such as ``push to`` or ``pull from``. 401/403 and
    ``DENIED``/``UNAUTHORIZED`` give ``RegistryAuthError``; 5xx, 408 and 429 give
    ``RegistryUnavailable``; everything else ``RegistryError``. ``username`` (the account the
    request was made as, None when anonymous) is named when the registry denies it access:
    with quay.io robot accounts (``org+robot``) it tells which robot lacks the permission.
    """
    codes = registry_codes(resp)
    detail = describe_body(resp)
    where = f"{action} {repository}" if repository else action
    status = resp.status_code
    hint = next((_HINTS[c] for c in codes if c in _HINTS), "")
    if action.startswith("pull") and {"NAME_UNKNOWN", "MANIFEST_UNKNOWN"} & set(codes):
        hint = "check the image name and tag"
    cls: type[RegistryProblem]
    if status == 401 or "UNAUTHORIZED" in codes:
        cls, verb = RegistryAuthError, "refused"
        hint = hint or "check the username and password (or token) for this registry"
    elif status == 403 or "DENIED" in codes:
        cls, verb = RegistryAuthError, "denied"
        if username:
            where += f" for {username}"
            if action.startswith("push"):
                hint = "the credentials are valid but lack write permission"
        hint = hint or _HINTS["DENIED"]
    elif status in (408, 429) or status >= 500:
        cls, verb = RegistryUnavailable, "failed to"
    else:
        cls, verb = RegistryError, "rejected"
    message = f"{registry} {verb} {where}: {detail} (HTTP {status})"
    if hint:
        message += f"; {hint}"
    return cls(
        Masker(secrets).mask(message),
        registry=registry,
        repository=repository,
        action=action_of(action),
        http_status=status,
        codes=tuple(codes),
    )


def auth_failure(
    resp: requests.Response,
    *,
    registry: str,
    action: str,
    repository: str,
    username: str | None,
    secrets: Iterable[str] = (),
) -> RegistryAuthError:
    """The exception for a 401 that re-authenticating did not cure. ``username`` is None for
    anonymous requests. Says which of the three it is: no credentials, wrong credentials,
    or valid credentials without the access (``insufficient_scope``)."""
    from bot.pushers.registry.challenge import pick_challenge

    challenge = pick_challenge(resp.headers.get("WWW-Authenticate", ""))
    where = f"{action} {repository}"
    if username is None:
        message = (
            f"{registry} needs credentials to {where}: set username and password on the "
            f'step or under [registries."{registry}"]'
        )
    elif challenge is not None and challenge.error == "insufficient_scope":
        wanted = ", ".join(challenge.scopes) or "this repository"
        message = (
            f"{registry} denied {where}: user {username!r} is not allowed {wanted}; "
            "grant it access or use other credentials"
        )
    else:
        message = (
            f"{registry} rejected the credentials of user {username!r} to {where}: "
            f"{describe_body(resp)} (HTTP 401); check the username and password"
        )
    return RegistryAuthError(
        Masker(secrets).mask(message),
        registry=registry,
        repository=repository,
        action=action_of(action),
        http_status=resp.status_code,
        codes=tuple(registry_codes(resp)),
    )
