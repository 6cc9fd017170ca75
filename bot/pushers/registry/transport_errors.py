"""Transport failures (no answer at all: DNS, TLS, refused, timed out, dropped) turned
into sentences a user can act on, and into ``RegistryUnavailable``/``UnknownRegistryHost``.

Messages never carry an exception repr or a URL (they hold queries and signatures).
"""

from __future__ import annotations

import errno
import http.client
import os
import socket
import ssl
from collections.abc import Iterable
from typing import Any

import requests
import urllib3

from bot.errors import RegistryUnavailable, UnknownRegistryHost
from bot.imageref import DOCKER_HUB
from bot.masking import Masker
from bot.pushers.registry.errors import action_of


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
        return _dns_problem(registry, resolve, causes)
    if _first(causes, (requests.exceptions.SSLError, ssl.SSLError)) is not None:
        return _tls_problem(registry, causes)
    if isinstance(err, requests.exceptions.ProxyError):
        return (
            f"cannot reach {registry} through the HTTP proxy{where}; check HTTPS_PROXY, "
            "HTTP_PROXY and NO_PROXY"
        )
    problem = _connection_problem(registry, causes, where, connect_timeout, read_timeout)
    if problem is not None:
        return problem
    if isinstance(err, requests.exceptions.TooManyRedirects):
        return f"{registry} redirected too many times{where}"
    code = _errno(causes)
    if code is not None:
        text = os.strerror(code).lower()
        return f"cannot reach {registry}{where}: {text}"
    return f"cannot reach {registry}{where}: the connection failed"


def _dns_problem(registry: str, resolve: BaseException, causes: list[BaseException]) -> str:
    host = getattr(resolve, "host", None) or split_host(registry)
    gai = _first(causes, socket.gaierror)
    if gai is not None and gai.errno == socket.EAI_AGAIN:
        return (
            f"cannot resolve {host}: the DNS lookup failed for now (temporary failure); "
            "check this machine's DNS and retry"
        )
    return f"cannot resolve {host}: no such host (check the registry host in 'repository')"


def _tls_problem(registry: str, causes: list[BaseException]) -> str:
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


def _connection_problem(
    registry: str,
    causes: list[BaseException],
    where: str,
    connect_timeout: float,
    read_timeout: float,
) -> str | None:
    """The sentence for a refused, unroutable, timed-out or dropped connection (None for
    any other failure)."""
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
    return None


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


STEP_OPTION = "the step's 'repository' (or 'registry') option"
"""Where a push target's registry host is named (``unknown_host``'s default)."""


def unknown_host(
    err: RegistryUnavailable, registry: str, named_in: str = STEP_OPTION
) -> UnknownRegistryHost | None:
    """``UnknownRegistryHost`` when ``err`` is DNS saying that ``registry`` (a host the user
    named, in ``named_in``: the step's own options unless told otherwise) does not exist;
    None for any other failure, and for a host the bot chose (a ``mirror_of``, a token
    service, Docker Hub)."""
    host = err.unresolved_host
    if host is None or host.lower() != split_host(registry).lower() or registry == DOCKER_HUB:
        return None
    return UnknownRegistryHost.named(
        host,
        named_in,
        registry=err.registry or registry,
        repository=err.repository,
        action=err.action,
    )
