"""Registry answers turned into ``RegistryError``s a user can act on.

Messages name the registry host, the action and the repository, then the registry's own
words (``errors[]`` of a JSON body, or the first line of a text body) and, where we know one,
a hint. Every message goes through a ``Masker`` holding the credentials in play, and URLs are
cut before their query (pre-signed blob URLs carry signatures).
"""

from __future__ import annotations

import errno
import http.client
import json
import os
import socket
import ssl
from collections.abc import Iterable
from typing import Any

import requests
import urllib3

from bot.errors import (
    RegistryAuthError,
    RegistryError,
    RegistryProblem,
    RegistryUnavailable,
    UnknownRegistryHost,
)
from bot.imageref import DOCKER_HUB
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


def _causes(err: BaseException) -> list[BaseException]:
    """``err`` and everything it wraps (``requests`` → urllib3 ``MaxRetryError.reason`` →
    ``NewConnectionError`` → ``OSError``…), outermost first."""
    out: list[BaseException] = []
    todo: list[BaseException] = [err]
    while todo:
        current = todo.pop(0)
        if any(current is seen for seen in out):
            continue
        out.append(current)
        nested = [getattr(current, "reason", None), current.__cause__, current.__context__]
        nested += list(current.args)
        todo += [n for n in nested if isinstance(n, BaseException)]
    return out


def _first(causes: list[BaseException], kind: type[BaseException] | tuple[type, ...]) -> Any:
    return next((c for c in causes if isinstance(c, kind)), None)


def _errno(causes: list[BaseException]) -> int | None:
    for cause in causes:
        if isinstance(cause, OSError) and isinstance(cause.errno, int) and cause.errno > 0:
            return cause.errno
    return None


def _tls_reason(causes: list[BaseException]) -> str:
    verify = _first(causes, ssl.SSLCertVerificationError)
    if verify is not None and getattr(verify, "verify_message", None):
        return str(verify.verify_message)
    tls = _first(causes, ssl.SSLError)
    reason = getattr(tls, "reason", None) if tls is not None else None
    return str(reason).replace("_", " ").lower() if reason else "handshake failed"


def unresolved_host(registry: str, err: BaseException) -> str | None:
    """The host DNS says does not exist, when that is why ``err`` happened (None for any
    other cause, a temporary DNS failure included: that is this machine's DNS, not the
    name)."""
    causes = _causes(err)
    resolve = _first(causes, (urllib3.exceptions.NameResolutionError, socket.gaierror))
    if resolve is None:
        return None
    gai = _first(causes, socket.gaierror)
    if gai is not None and gai.errno == socket.EAI_AGAIN:
        return None
    return str(getattr(resolve, "host", None) or split_host(registry))


def transport_problem(
    registry: str,
    err: BaseException,
    *,
    action: str = "",
    repository: str | None = None,
    connect_timeout: float = 15.0,
    read_timeout: float = 300.0,
) -> str:
    """One readable sentence for a transport failure talking to ``registry``: what failed
    and what to do. Never an exception repr or a URL (they carry queries and signatures)."""
    causes = _causes(err)
    where = f" while trying to {action} {repository}" if action and repository else ""
    resolve = _first(causes, (urllib3.exceptions.NameResolutionError, socket.gaierror))
    if resolve is not None:
        host = getattr(resolve, "host", None) or split_host(registry)
        gai = _first(causes, socket.gaierror)
        if gai is not None and gai.errno == socket.EAI_AGAIN:
            return (
                f"cannot resolve {host}: the DNS lookup failed for now (temporary failure); "
                "check this machine's DNS and retry"
            )
        return f"cannot resolve {host}: no such host (check the registry host in 'repository')"
    if _first(causes, (requests.exceptions.SSLError, ssl.SSLError)) is not None:
        verify = _first(causes, ssl.SSLCertVerificationError)
        reason = _tls_reason(causes)
        if verify is not None and "mismatch" in reason.lower():
            return (
                f"TLS certificate of {registry} is not valid for that name ({reason}): "
                "use the host name the certificate was issued for"
            )
        if verify is not None:
            return (
                f"TLS certificate of {registry} is not trusted ({reason}): set "
                f'[registries."{registry}"] ca_file to the CA that signed it (or insecure = true)'
            )
        return (
            f"TLS handshake with {registry} failed ({reason}); if it serves plain HTTP, set "
            f'[registries."{registry}"] insecure = true'
        )
    if isinstance(err, requests.exceptions.ProxyError):
        return (
            f"cannot reach {registry} through the HTTP proxy{where}; check HTTPS_PROXY, "
            "HTTP_PROXY and NO_PROXY"
        )
    code = _errno(causes)
    if code == errno.ECONNREFUSED:
        return (
            f"cannot reach {registry}: connection refused (is the registry running, and is "
            "the host/port in 'repository' right?)"
        )
    if code in (errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EADDRNOTAVAIL):
        return (
            f"cannot reach {registry}: no route to the host (check the network and the host in "
            "'repository')"
        )
    if _connect_timed_out(causes):
        return (
            f"{registry} did not answer within {connect_timeout:.0f} s (is the host/port in "
            "'repository' right, and does a firewall let the connection through?)"
        )
    if _first(causes, (requests.exceptions.ReadTimeout, urllib3.exceptions.ReadTimeoutError)):
        return (
            f"{registry} did not answer within {read_timeout:.0f} s{where}; the registry may "
            "be overloaded, retry later"
        )
    if _connection_dropped(causes):
        return (
            f"{registry} closed the connection{where} (the registry or a proxy in front of it "
            "dropped it); retry later"
        )
    if isinstance(err, requests.exceptions.TooManyRedirects):
        return f"{registry} redirected too many times{where}"
    if code is not None:
        text = os.strerror(code).lower()
        return f"cannot reach {registry}{where}: {text}"
    return f"cannot reach {registry}{where}: the connection failed"


def _connect_timed_out(causes: list[BaseException]) -> bool:
    return any(
        isinstance(c, (requests.exceptions.ConnectTimeout, urllib3.exceptions.ConnectTimeoutError))
        and not isinstance(c, urllib3.exceptions.NewConnectionError)
        for c in causes
    )


def _connection_dropped(causes: list[BaseException]) -> bool:
    return _errno(causes) in (errno.ECONNRESET, errno.EPIPE, errno.ECONNABORTED) or bool(
        _first(
            causes,
            (
                urllib3.exceptions.ProtocolError,
                requests.exceptions.ChunkedEncodingError,
                http.client.RemoteDisconnected,
            ),
        )
    )


def transport_cause(
    registry: str,
    err: BaseException,
    *,
    connect_timeout: float = 15.0,
    read_timeout: float = 300.0,
) -> str:
    """A short clause naming a transport failure, for the line that announces a retry:
    ``cannot connect to HOST (connection refused)``, ``HOST closed the connection``... No
    hint (the final error, ``transport_problem``, gives one) and never a URL."""
    causes = _causes(err)
    resolve = _first(causes, (urllib3.exceptions.NameResolutionError, socket.gaierror))
    if resolve is not None:
        return f"cannot resolve {getattr(resolve, 'host', None) or split_host(registry)}"
    if _first(causes, (requests.exceptions.SSLError, ssl.SSLError)) is not None:
        return f"TLS handshake with {registry} failed ({_tls_reason(causes)})"
    if isinstance(err, requests.exceptions.ProxyError):
        return f"cannot reach {registry} through the HTTP proxy"
    code = _errno(causes)
    if code == errno.ECONNREFUSED:
        return f"cannot connect to {registry} (connection refused)"
    if code in (errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EADDRNOTAVAIL):
        return f"cannot connect to {registry} (no route to host)"
    if _connect_timed_out(causes):
        return f"cannot connect to {registry} (no answer within {connect_timeout:.0f} s)"
    if _first(causes, (requests.exceptions.ReadTimeout, urllib3.exceptions.ReadTimeoutError)):
        return f"{registry} did not answer within {read_timeout:.0f} s"
    if _connection_dropped(causes):
        return f"{registry} closed the connection"
    if code is not None:
        return f"cannot reach {registry} ({os.strerror(code).lower()})"
    return f"cannot reach {registry} ({type(err).__name__})"


def split_host(registry: str) -> str:
    """``host`` of ``host:port`` (IPv6 literals in brackets kept whole)."""
    if registry.startswith("["):
        return registry.split("]", 1)[0] + "]"
    return registry.rsplit(":", 1)[0] if registry.count(":") == 1 else registry


def unreachable(
    registry: str,
    action: str,
    repository: str | None,
    err: BaseException,
    secrets: Iterable[str] = (),
    *,
    connect_timeout: float = 15.0,
    read_timeout: float = 300.0,
) -> RegistryUnavailable:
    """``RegistryUnavailable`` for a transport failure that outlived the retries (its
    ``unresolved_host`` set when DNS said the host does not exist)."""
    message = transport_problem(
        registry,
        err,
        action=action,
        repository=repository,
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
    )
    return RegistryUnavailable(
        Masker(secrets).mask(message),
        registry=registry,
        repository=repository,
        action=action_of(action),
        unresolved_host=unresolved_host(registry, err),
    )


def unknown_host(err: RegistryUnavailable, registry: str) -> UnknownRegistryHost | None:
    """``UnknownRegistryHost`` when ``err`` is DNS saying that ``registry`` (a host the
    step's own options named) does not exist; None for any other failure, and for a host
    the bot chose (a ``mirror_of``, a token service, Docker Hub)."""
    host = err.unresolved_host
    if host is None or host.lower() != split_host(registry).lower() or registry == DOCKER_HUB:
        return None
    return UnknownRegistryHost(
        f"registry host {host} does not resolve (no such host): check the registry host "
        "in the step's 'repository' (or 'registry') option",
        registry=err.registry or registry,
        repository=err.repository,
        action=err.action,
    )
