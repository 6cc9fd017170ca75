"""``GET /v2/``: which scheme a registry answers on (https, or http for ``auto``), whether it
is a registry at all, and the challenge it asks us to answer. Retried like any request."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import requests

from bot.errors import RegistryError
from bot.pushers.registry.errors import describe_body, registry_codes
from bot.pushers.registry.retry import RETRY_STATUSES
from bot.pushers.registry.transport import CONNECT_TIMEOUT, TRANSPORT_ERRORS
from bot.pushers.registry.transport_errors import transport_cause, unreachable

if TYPE_CHECKING:
    from bot.pushers.registry.client import RegistryClient

# A ping waits less for its answer than a blob upload does.
PING_READ_TIMEOUT = 60.0


@dataclass
class _Round:
    """One pass over the endpoint's schemes: the base URL that answered, or the busy answer
    to wait out, or the last transport error (and whether every error was a TLS one)."""

    base: str = ""
    busy: requests.Response | None = None
    error: Exception | None = None
    only_tls_errors: bool = True


def ping(client: RegistryClient) -> str:
    """Pings ``client``'s registry, retrying (announced) busy answers and transport errors,
    never TLS errors alone (certificates do not get better by waiting). Starts the
    client's authenticator with the answer and returns the base URL (``https://host``).
    Raises ``RegistryUnavailable`` when no try got through, ``RegistryError`` when what
    answered is not a registry."""
    last: Exception | None = None
    for attempt in range(client.retry.attempts):
        round_ = _round(client, attempt)
        if round_.base:
            return round_.base
        last = round_.error or last
        if round_.only_tls_errors:
            break  # certificates do not get better by waiting
        if attempt + 1 >= client.retry.attempts:
            break  # no point waiting after the last try
        if round_.busy is not None:
            cause = client.answered(round_.busy, "GET", "/v2/")
        else:
            assert last is not None
            cause = transport_cause(client.name, last, read_timeout=PING_READ_TIMEOUT)
        wait = client.wait(attempt, round_.busy)
        client.retrying(cause, wait, attempt + 2, resp=round_.busy)
    assert last is not None
    raise unreachable(
        client.name,
        "connect",
        None,
        last,
        client.secrets,
        connect_timeout=CONNECT_TIMEOUT,
        read_timeout=PING_READ_TIMEOUT,
    )


def _round(client: RegistryClient, attempt: int) -> _Round:
    """``GET /v2/`` over each scheme in turn until one answers. An answer that is not worth
    a retry ends the round: the registry (``base``) or an error raised."""
    round_ = _Round()
    endpoint = client.endpoint
    for scheme in endpoint.schemes:
        base = f"{scheme}://{endpoint.host}"
        try:
            resp = client.transport.request(
                "GET",
                f"{base}/v2/",
                timeout=(CONNECT_TIMEOUT, PING_READ_TIMEOUT),
                verify=endpoint.verify,
            )
        except requests.exceptions.SSLError as err:
            round_.error = err  # a plain-HTTP server or an untrusted certificate
            continue
        except TRANSPORT_ERRORS as err:
            round_.error, round_.only_tls_errors = err, False
            continue
        round_.only_tls_errors = False
        if resp.status_code in RETRY_STATUSES and attempt + 1 < client.retry.attempts:
            round_.busy = resp
            return round_
        _check(client, resp, base)
        client.auth.start(base, resp)
        round_.base = base
        return round_
    return round_


def _check(client: RegistryClient, resp: requests.Response, base: str) -> None:
    """Raises unless ``resp`` is a registry's ``/v2/`` answer (200, or a 401 challenge)."""
    if resp.status_code >= 500 or resp.status_code in RETRY_STATUSES:
        failed = client.fail(resp, "answer for", "/v2/")
        failed.repository = None  # the ping names no repository
        raise failed
    if resp.status_code not in (200, 401):
        raise RegistryError(
            f"{client.name} does not look like a registry: GET {base}/v2/ "
            f"answered HTTP {resp.status_code} ({describe_body(resp)})",
            registry=client.name,
            action="ping",
            http_status=resp.status_code,
            codes=tuple(registry_codes(resp)),
        )
