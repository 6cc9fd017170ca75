"""Blob upload: ``HEAD`` (skip when present) → optional ``POST ?mount=&from=`` → ``POST`` →
one streamed ``PUT ?digest=`` with ``Content-Length``.

A registry that refuses a body on ``PUT`` is switched to ``PATCH`` (whole blob, no
``Content-Range``) + empty ``PUT`` for the rest of the client's push. Any failure while the
body is in flight (dropped connection, 5xx, lost upload session, expired token) restarts the
blob from ``POST`` with a freshly opened body, announced and after a wait, up to
``retry.attempts`` times.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urljoin

import requests

from bot.errors import RegistryError, RegistryProblem, RegistryUnavailable
from bot.masking import Masker
from bot.pushers.registry.auth import pull_scope, push_scope
from bot.pushers.registry.errors import describe_body, registry_codes
from bot.pushers.registry.retry import RETRY_STATUSES
from bot.pushers.registry.transport import READ_TIMEOUT, TRANSPORT_ERRORS
from bot.pushers.registry.transport_errors import transport_cause

if TYPE_CHECKING:
    from bot.pushers.registry.client import RegistryClient

BodyOpener = Callable[[], AbstractContextManager[Any]]
"""Opens a fresh body for one try of an upload (a binary file, or a ``SizedStream``)."""

UPLOAD_LOST_CODES = frozenset({"BLOB_UPLOAD_UNKNOWN", "BLOB_UPLOAD_INVALID"})
# Statuses with which a registry says "not a body on PUT": switch to PATCH + PUT.
PUT_UNSUPPORTED = frozenset({405, 415, 501})


class Restart(Exception):
    """The blob upload must start again from POST (after ``wait`` seconds; ``resp`` is the
    answer that asked for it, whose ``Retry-After`` set ``wait``). ``fatal``: it must not,
    raise this instead."""

    def __init__(
        self,
        why: str,
        wait: float = 0.0,
        fatal: RegistryProblem | None = None,
        resp: requests.Response | None = None,
    ) -> None:
        super().__init__(why)
        self.wait = wait
        self.fatal = fatal
        self.resp = resp


def upload_blob(
    client: RegistryClient,
    repository: str,
    digest: str,
    size: int,
    opener: BodyOpener,
    *,
    mount_from: str | None = None,
) -> str:
    """Makes blob ``digest`` (``size`` bytes) exist in ``repository``.

    ``opener()`` must return a context manager yielding a fresh body (a binary file or a
    ``SizedStream``) each time; it is called again for every retry. ``mount_from`` names a
    repository on this registry that has the blob. Returns ``exists``, ``mounted`` or
    ``uploaded``; raises ``RegistryUnavailable`` once every try failed.
    """
    if client.blob_exists(repository, digest):
        return "exists"
    mount = mount_from
    last = "no attempt"
    last_status: int | None = None
    for attempt in range(client.retry.attempts):
        # The session's URL as the registry last named it: the one to cancel.
        location: list[str] = []
        try:
            started = start_upload(client, repository, digest if mount else None, mount)
            if started is None:
                return "mounted"
            location.append(started)
            mount = None
            _send_blob(client, location, repository, digest, opener, attempt)
            return "uploaded"
        except Restart as restart:
            if location:
                cancel(client, location[0], repository)
            if restart.fatal is not None:
                raise restart.fatal from None
            last = str(restart)
            last_status = restart.resp.status_code if restart.resp is not None else None
            if attempt + 1 < client.retry.attempts:  # no point waiting after the last try
                client.retrying(
                    f"upload of blob {digest[:19]}… to {repository} failed: {restart}",
                    restart.wait or client.wait(attempt),
                    attempt + 2,
                    resp=restart.resp,
                    again="uploading it again from the start",
                )
    if client.blob_exists(repository, digest):
        return "uploaded"  # a failed answer to a request that did get through
    raise _gave_up(client, repository, digest, last, last_status)


def _gave_up(
    client: RegistryClient, repository: str, digest: str, last: str, status: int | None
) -> RegistryUnavailable:
    """The error for a blob that did not upload in ``retry.attempts`` tries (``last``: why
    the last one failed, ``status`` its HTTP status if it got an answer)."""
    return RegistryUnavailable(
        Masker(client.secrets).mask(
            f"{client.name} failed to push to {repository}: blob {digest[:19]}… did not "
            f"upload after {client.retry.attempts} tries ({last})"
        ),
        registry=client.name,
        repository=repository,
        action="push",
        http_status=status,
    )


def _send_blob(
    client: RegistryClient,
    location: list[str],
    repository: str,
    digest: str,
    opener: BodyOpener,
    attempt: int,
) -> None:
    """Sends the body into the open session ``location[0]`` (which follows the session's
    URL) and completes it, the way the client's ``upload_mode`` says; raises ``Restart``
    when that did not work."""
    headers = {"Content-Type": "application/octet-stream"}
    if client.upload_mode == "put":
        url = with_digest(location[0], digest)
        resp = _send_body(client, "PUT", url, repository, opener, headers)
        _check_answer(client, resp, repository, (201,), attempt)
        return
    resp = _send_body(client, "PATCH", location[0], repository, opener, headers)
    _check_answer(client, resp, repository, (201, 202, 204), attempt)
    location[0] = location_of(client, resp)
    resp = close_upload(client, location[0], digest, repository)
    _check_answer(client, resp, repository, (201,), attempt)


def location_of(client: RegistryClient, resp: requests.Response) -> str:
    """The upload session URL an answer names (``Location``, made absolute)."""
    loc = resp.headers.get("Location")
    if not loc:
        raise RegistryError(
            f"{client.name} opened an upload without a Location header",
            registry=client.name,
            action="push",
            http_status=resp.status_code,
        )
    return urljoin(resp.url, loc)


def start_upload(
    client: RegistryClient, repository: str, mount: str | None, source: str | None
) -> str | None:
    """Opens an upload session; returns its URL, or None when the blob was mounted."""
    params = {"mount": mount, "from": source} if mount and source else None
    scopes = [push_scope(repository)] + ([pull_scope(source)] if source else [])
    resp = client.request(
        "POST",
        client.url(f"{repository}/blobs/uploads/"),
        scopes=scopes,
        action="push to",
        repository=repository,
        params=params,
    )
    if resp.status_code == 201 and params:
        return None
    if resp.status_code == 202:
        return location_of(client, resp)
    if params:
        # A mount the registry will not do (or these credentials may not read the source
        # for) is no reason to fail: upload instead.
        resp.close()
        return start_upload(client, repository, None, None)
    raise client.fail(resp, "push to", repository)


def with_digest(location: str, digest: str) -> str:
    return f"{location}{'&' if '?' in location else '?'}digest={quote(digest)}"


def _send_body(
    client: RegistryClient,
    method: str,
    url: str,
    repository: str,
    opener: BodyOpener,
    headers: dict[str, str],
) -> requests.Response:
    try:
        return client.request(
            method,
            url,
            scopes=[push_scope(repository)],
            action="push to",
            repository=repository,
            body=opener,
            headers=headers,
            retry=False,
        )
    except TRANSPORT_ERRORS as err:
        raise Restart(transport_cause(client.name, err, read_timeout=READ_TIMEOUT)) from err


def _check_answer(
    client: RegistryClient,
    resp: requests.Response,
    repository: str,
    ok: tuple[int, ...],
    attempt: int,
) -> None:
    """Returns when ``resp`` is one of ``ok``; otherwise raises ``Restart`` saying why the
    blob starts again (or, ``fatal``, why it must not)."""
    if resp.status_code in ok:
        return
    codes = registry_codes(resp)
    if resp.status_code in RETRY_STATUSES:
        raise Restart(
            f"{client.name} answered HTTP {resp.status_code} ({describe_body(resp)})",
            client.wait(attempt, resp),
            resp=resp,
        )
    if resp.status_code == 404 and (UPLOAD_LOST_CODES & set(codes) or not codes):
        said = f" {', '.join(codes)}" if codes else ""
        raise Restart(f"{client.name} lost the upload session (HTTP 404{said})")
    # The body is spent: a new session with a fresh token and a reopened body.
    if resp.status_code == 401 and client.auth.unauthorized(resp):
        raise Restart(f"{client.name} refused our token during the upload (HTTP 401)")
    if resp.status_code in PUT_UNSUPPORTED and client.upload_mode == "put":
        client.upload_mode = "patch"
        raise Restart(
            f"{client.name} refused a body on PUT (HTTP {resp.status_code}); switching to PATCH"
        )
    raise Restart("fatal", fatal=client.fail(resp, "push to", repository))


def close_upload(
    client: RegistryClient, location: str, digest: str, repository: str, *, once: bool = False
) -> requests.Response:
    """The empty ``PUT ?digest=`` that completes an upload session. ``once``: no retry
    and no re-auth (the streaming path falls back to the file instead)."""
    return client.as_pusher(
        "PUT",
        with_digest(location, digest),
        repository,
        body=b"",
        headers={"Content-Length": "0"},
        retry=not once,
        reauth=not once,
    )


def cancel(client: RegistryClient, location: str, repository: str) -> None:
    """``DELETE`` an upload session, best effort (the registry expires it anyway)."""
    with contextlib.suppress(Exception):
        client.transport.request(
            "DELETE",
            location,
            headers=client.auth.header([push_scope(repository)]),
            timeout=10,
            verify=client.endpoint.verify,
        ).close()
