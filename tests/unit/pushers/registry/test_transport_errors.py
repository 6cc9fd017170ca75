"""Transport failures become one readable sentence: what failed and what to do, never a
Python exception repr (they end up in commit statuses), and an errored ``RegistryUnavailable``
with its facts; only a host the step named that DNS does not know is the step's fault."""

from __future__ import annotations

import errno
import socket
import ssl

import pytest
import requests
import urllib3

from bot.errors import (
    RegistryUnavailable,
    StepError,
    UnknownRegistryHost,
)
from bot.pushers.credentials import RegistryCredentials
from bot.pushers.model import RegistryAuth
from bot.pushers.registry.client import RegistryClient, RetryPolicy
from bot.pushers.registry.transport_errors import (
    transport_cause,
    transport_problem,
    unknown_host,
    unreachable,
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


REPR_MARKS = ("Error(", "Connection(", "(Caused by", "Errno", "<", "Max retries", "_ssl.c")


def readable(message: str) -> str:
    for mark in REPR_MARKS:
        assert mark not in message, f"{mark!r} in {message!r}"
    return message


def through_urllib3(
    reason: Exception, kind: type[requests.RequestException] = requests.ConnectionError
) -> requests.RequestException:
    """What ``requests`` raises: its exception around urllib3's ``MaxRetryError``."""
    pool = urllib3.HTTPConnectionPool("registry.example", 443)
    return kind(urllib3.exceptions.MaxRetryError(pool, "/v2/?_state=secret", reason))


def new_connection(cause: OSError) -> urllib3.exceptions.NewConnectionError:
    conn = urllib3.connection.HTTPConnection("registry.example", 443)
    err = urllib3.exceptions.NewConnectionError(conn, f"Failed to establish: {cause!r}")
    err.__cause__ = cause
    return err


def test_closed_port_is_connection_refused() -> None:
    host = f"127.0.0.1:{free_port()}"
    client = RegistryClient(
        host,
        "http",
        RegistryAuth(),
        {},
        credentials=RegistryCredentials({}),
        retry=RetryPolicy(1, 0.01),
    )
    with pytest.raises(RegistryUnavailable) as info, client:
        client.ping()
    assert readable(str(info.value)) == (
        f"cannot reach {host}: connection refused (is the registry running, and is the "
        "host/port in 'repository' right?)"
    )


def test_unknown_host_cannot_be_resolved() -> None:
    client = RegistryClient(
        "registry.invalid",
        "https",
        RegistryAuth(),
        {},
        credentials=RegistryCredentials({}),
        retry=RetryPolicy(1),
    )
    with pytest.raises(RegistryUnavailable) as info, client:
        client.ping()
    message = readable(str(info.value))
    assert message.startswith("cannot resolve registry.invalid: ")
    assert "no such host" in message or "temporary failure" in message


@pytest.mark.parametrize(
    ("gai_errno", "says"),
    [(socket.EAI_NONAME, "no such host"), (socket.EAI_AGAIN, "temporary failure")],
)
def test_name_resolution_errors(gai_errno: int, says: str) -> None:
    conn = urllib3.connection.HTTPSConnection("registry.example", 443)
    gai = socket.gaierror(gai_errno, "Name or service not known")
    reason = urllib3.exceptions.NameResolutionError("registry.example", conn, gai)
    reason.__cause__ = gai  # urllib3 raises it ``from`` the gaierror
    err = through_urllib3(reason)
    message = readable(transport_problem("registry.example", err))
    assert message.startswith("cannot resolve registry.example: ") and says in message


def test_untrusted_certificate_says_to_set_ca_file() -> None:
    verify = ssl.SSLCertVerificationError(
        1,
        "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: self-signed certificate "
        "in certificate chain (_ssl.c:1006)",
    )
    verify.verify_message = "self-signed certificate in certificate chain"
    err = through_urllib3(urllib3.exceptions.SSLError(verify), requests.exceptions.SSLError)
    assert readable(str(unreachable("registry.example", "connect", None, err))) == (
        "TLS certificate of registry.example is not trusted (self-signed certificate in "
        'certificate chain): set [registries."registry.example"] ca_file to the CA that signed '
        "it (or insecure = true)"
    )


def test_certificate_for_another_name() -> None:
    verify = ssl.SSLCertVerificationError(1, "certificate verify failed")
    verify.verify_message = "Hostname mismatch, certificate is not valid for 'registry.example'."
    err = through_urllib3(urllib3.exceptions.SSLError(verify), requests.exceptions.SSLError)
    message = readable(transport_problem("registry.example", err))
    assert "not valid for that name" in message and "Hostname mismatch" in message


def test_plain_http_server_on_a_tls_connection() -> None:
    tls = ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number (_ssl.c:1006)")
    tls.reason = "WRONG_VERSION_NUMBER"
    err = through_urllib3(urllib3.exceptions.SSLError(tls), requests.exceptions.SSLError)
    message = readable(transport_problem("registry.example", err))
    assert message.startswith("TLS handshake with registry.example failed (wrong version number)")
    assert "insecure = true" in message


def test_connect_timeout_names_the_wait() -> None:
    pool = urllib3.HTTPConnectionPool("registry.example", 443)
    reason = urllib3.exceptions.ConnectTimeoutError(pool, "timed out. (connect timeout=15)")
    err = through_urllib3(reason, requests.exceptions.ConnectTimeout)
    message = readable(transport_problem("registry.example", err, connect_timeout=15))
    assert message.startswith("registry.example did not answer within 15 s")


def test_read_timeout_names_the_wait_and_the_action() -> None:
    pool = urllib3.HTTPConnectionPool("registry.example", 443)
    reason = urllib3.exceptions.ReadTimeoutError(pool, "/v2/", "Read timed out.")
    err = through_urllib3(reason, requests.exceptions.ReadTimeout)
    message = readable(
        str(unreachable("registry.example", "push to", "acme/app", err, read_timeout=300))
    )
    assert message == (
        "registry.example did not answer within 300 s while trying to push to acme/app; the "
        "registry may be overloaded, retry later"
    )


@pytest.mark.parametrize(
    "err",
    [
        requests.ConnectionError(
            urllib3.exceptions.ProtocolError(
                "Connection aborted.", ConnectionResetError(errno.ECONNRESET, "reset by peer")
            )
        ),
        requests.exceptions.ChunkedEncodingError(
            urllib3.exceptions.ProtocolError("Response ended prematurely")
        ),
    ],
    ids=["reset", "truncated"],
)
def test_dropped_connection(err: Exception) -> None:
    message = readable(transport_problem("registry.example", err, action="push to", repository="a"))
    assert message.startswith("registry.example closed the connection while trying to push to a")


def test_no_route_to_host() -> None:
    err = through_urllib3(new_connection(OSError(errno.EHOSTUNREACH, "No route to host")))
    message = readable(transport_problem("10.0.0.9:5000", err))
    assert message.startswith("cannot reach 10.0.0.9:5000: no route to the host")


def test_proxy_failure() -> None:
    # urllib3 wraps what went wrong with the proxy (here the CONNECT was refused)
    tunnel = OSError("Tunnel connection failed: 403 Forbidden")
    err = through_urllib3(urllib3.exceptions.ProxyError("Unable to connect to proxy", tunnel))
    err = requests.exceptions.ProxyError(*err.args)
    assert "HTTPS_PROXY" in readable(transport_problem("registry.example", err))


def test_unknown_failure_is_still_a_sentence() -> None:
    message = transport_problem("registry.example", requests.ConnectionError("weird <thing>"))
    assert readable(message) == "cannot reach registry.example: the connection failed"


# --- the short clause a retry line starts with (transport_cause) ---------------------------


def _timeout(kind: str) -> requests.RequestException:
    pool = urllib3.HTTPConnectionPool("registry.example", 443)
    if kind == "connect":
        reason: Exception = urllib3.exceptions.ConnectTimeoutError(pool, "timed out")
        return through_urllib3(reason, requests.exceptions.ConnectTimeout)
    reason = urllib3.exceptions.ReadTimeoutError(pool, "/v2/", "Read timed out.")
    return through_urllib3(reason, requests.exceptions.ReadTimeout)


@pytest.mark.parametrize(
    ("err", "cause"),
    [
        (
            through_urllib3(new_connection(ConnectionRefusedError(errno.ECONNREFUSED, "refused"))),
            "cannot connect to registry.example (connection refused)",
        ),
        (
            through_urllib3(new_connection(OSError(errno.EHOSTUNREACH, "No route to host"))),
            "cannot connect to registry.example (no route to host)",
        ),
        (_timeout("connect"), "cannot connect to registry.example (no answer within 15 s)"),
        (_timeout("read"), "registry.example did not answer within 300 s"),
        (
            requests.ConnectionError(
                urllib3.exceptions.ProtocolError(
                    "Connection aborted.", ConnectionResetError(errno.ECONNRESET, "reset")
                )
            ),
            "registry.example closed the connection",
        ),
        (
            requests.ConnectionError("weird <thing>"),
            "cannot reach registry.example (ConnectionError)",
        ),
    ],
    ids=["refused", "no-route", "connect-timeout", "read-timeout", "reset", "unknown"],
)
def test_transport_cause_is_one_short_clause(err: Exception, cause: str) -> None:
    assert readable(transport_cause("registry.example", err)) == cause


def test_transport_cause_of_a_closed_port_for_real() -> None:
    host = f"127.0.0.1:{free_port()}"
    with pytest.raises(requests.ConnectionError) as info:
        requests.get(f"http://{host}/v2/", timeout=5)
    assert transport_cause(host, info.value) == f"cannot connect to {host} (connection refused)"


# --- unreachable: the errored problem and its facts; hosts DNS does not know --------------


def _dns_error(host: str, errno: int = socket.EAI_NONAME) -> requests.ConnectionError:
    conn = urllib3.connection.HTTPSConnection(host, 443)
    gai = socket.gaierror(errno, "Name or service not known")
    resolve = urllib3.exceptions.NameResolutionError(host, conn, gai)
    resolve.__cause__ = gai  # urllib3 raises it ``from`` the gaierror
    retries = urllib3.exceptions.MaxRetryError(None, "/v2/", resolve)  # type: ignore[arg-type]
    return requests.ConnectionError(retries)


def test_unreachable_is_errored_and_names_the_host_dns_does_not_know() -> None:
    err = unreachable(
        "no-such-host.invalid", "push to", "acme/app", _dns_error("no-such-host.invalid")
    )
    assert isinstance(err, RegistryUnavailable)
    assert (err.registry, err.repository, err.action, err.http_status, err.codes) == (
        "no-such-host.invalid",
        "acme/app",
        "push",
        None,
        (),
    )
    assert err.unresolved_host == "no-such-host.invalid"


def test_a_temporary_dns_failure_is_not_an_unknown_host() -> None:
    err = unreachable("r.example", "connect", None, _dns_error("r.example", socket.EAI_AGAIN))
    assert err.unresolved_host is None and err.action == "ping"
    assert unknown_host(err, "r.example") is None


def test_connection_refused_is_errored_without_an_unresolved_host() -> None:
    refused = requests.ConnectionError(ConnectionRefusedError(111, "Connection refused"))
    err = unreachable("127.0.0.1:1", "connect", None, refused)
    assert isinstance(err, RegistryUnavailable) and err.unresolved_host is None
    assert "connection refused" in str(err)


def test_unknown_host_only_for_the_host_the_step_named() -> None:
    err = unreachable(
        "no-such-host.invalid:5000", "connect", None, _dns_error("no-such-host.invalid")
    )
    named = unknown_host(err, "no-such-host.invalid:5000")
    assert isinstance(named, UnknownRegistryHost) and isinstance(named, StepError)
    assert "does not resolve" in str(named) and named.registry == "no-such-host.invalid:5000"
    # a mirror_of host from [registries] (the bot's config) stays errored
    mirror = unreachable("mirror.internal", "connect", None, _dns_error("mirror.internal"))
    assert unknown_host(mirror, "no-such-host.invalid:5000") is None
    # Docker Hub is the bot's default, not a host the step named
    hub = unreachable("registry-1.docker.io", "connect", None, _dns_error("registry-1.docker.io"))
    assert unknown_host(hub, "registry-1.docker.io") is None
