"""A thin Docker Registry HTTP API V2 client (registry-push.md §1).

One ``RegistryClient`` talks to one registry for one push and may be shared by worker
threads. It sends every request through a ``Transport`` (``transport``: the seam;
``RequestsTransport`` by default, one ``requests.Session`` per thread); the authenticator is
shared. Retry waits go through the injected ``sleep``, token expiry and ``Retry-After``
dates through the injected ``clock``.

This module holds the requests themselves: ping, auth and re-auth on 401, retries with
backoff, and the error for a failed answer. The operations live beside it, one job each:

- ``uploads``: blob upload (``HEAD`` → mount → ``POST`` → ``PUT``/``PATCH``), restarted from
  ``POST`` when anything fails while the body is in flight;
- ``streamed``: a blob uploaded while it is produced (one chunked ``PATCH``, no retry);
- ``blobs``: reading blobs (whole and checked, or streamed);
- ``manifests``: reading and storing manifests, with the digest confirmed.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

import requests
import urllib3

from bot.engine import CredentialResolver
from bot.errors import RegistryProblem
from bot.logs import Log
from bot.masking import Masker
from bot.pushers.model import RegistryAuth, Scheme
from bot.pushers.registry import blobs, manifests, ping, streamed, uploads
from bot.pushers.registry.auth import Authenticator, Credentials, pull_scope, push_scope
from bot.pushers.registry.blobs import SizedStream
from bot.pushers.registry.endpoint import Endpoint, resolve_endpoint
from bot.pushers.registry.errors import (
    auth_failure,
    describe_body,
    error_for_response,
    registry_codes,
)
from bot.pushers.registry.manifests import Manifest
from bot.pushers.registry.retry import RETRY_STATUSES, Clock, RetryPolicy, Sleep, retry_after, when
from bot.pushers.registry.streamed import streaming_allowed
from bot.pushers.registry.transport import (
    CONNECT_TIMEOUT,
    READ_TIMEOUT,
    TRANSPORT_ERRORS,
    RequestsTransport,
    Transport,
)
from bot.pushers.registry.transport_errors import transport_cause, unreachable
from bot.pushers.registry.uploads import BodyOpener
from bot.settings import RegistrySettings

__all__ = ["RegistryClient", "RetryPolicy"]

logger = logging.getLogger(__name__)


class RegistryClient:
    """Speaks to the registry ``name`` (as images name it; ``mirror_of`` may send requests
    elsewhere). Methods raise ``RegistryAuthError``/``RegistryUnavailable``/``RegistryError``
    with user-facing, credential-free messages.

    ``credentials`` resolves what to present for ``auth`` (the one resolver the composition
    root builds; required, so no second resolver is ever made). ``transport`` sends the requests,
    ``sleep`` waits between retries and ``clock`` tells the time: tests pass fakes."""

    def __init__(
        self,
        name: str,
        scheme: Scheme,
        auth: RegistryAuth,
        registries: Mapping[str, RegistrySettings],
        *,
        retry: RetryPolicy | None = None,
        log: Log | None = None,
        credentials: CredentialResolver,
        transport: Transport | None = None,
        sleep: Sleep = time.sleep,
        clock: Clock = time.time,
    ) -> None:
        self.endpoint: Endpoint = resolve_endpoint(name, scheme, registries)
        self.name = name
        self.retry = retry or RetryPolicy()
        # Where retries are announced: the build log of the push (the bot's log without one).
        self.log = log
        self.transport: Transport = transport or RequestsTransport()
        self.sleep = sleep
        self.clock = clock
        resolve = credentials
        self.auth = Authenticator(
            self.endpoint,
            lambda: Credentials(*resolve(name, auth, self.say)),
            transport=self.transport,
            secrets=auth.secrets(),
            clock=clock,
        )
        if self.endpoint.verify is False:
            # Unverified TLS is a decision (loopback, or `insecure = true`), not news to log.
            warnings.filterwarnings("ignore", category=urllib3.exceptions.InsecureRequestWarning)
        self._base_url = ""
        self._ping_lock = threading.Lock()
        self.upload_mode = "put"
        self.streaming = streaming_allowed(self.endpoint.host)

    # --- plumbing -------------------------------------------------------------------------

    def close(self) -> None:
        self.transport.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def secrets(self) -> list[str]:
        return self.auth.secrets

    def say(self, message: str) -> None:
        """One warning line in the build log (masked with this push's credentials too)."""
        message = Masker(self.secrets).mask(message)
        if self.log is not None:
            self.log.warn(message)
        else:
            logger.warning("%s", message)

    def retrying(
        self,
        cause: str,
        wait: float,
        attempt: int,
        *,
        resp: requests.Response | None = None,
        again: str = "retrying",
    ) -> None:
        """Announces a retry (why, how long until it, and that it is ``attempt`` of
        ``retry.attempts``), then waits. Every retry loop goes through here, so no retry is
        silent."""
        asked = retry_after(resp, self.clock) if resp is not None else None
        said = when(wait, asked, self.retry.max_wait)
        self.say(f"{cause}; {again} in {said} (attempt {attempt} of {self.retry.attempts})")
        self.sleep(wait)

    def wait(self, attempt: int, resp: requests.Response | None = None) -> float:
        """The wait before try ``attempt + 2`` (``RetryPolicy.wait`` on this client's clock)."""
        return self.retry.wait(attempt, resp, self.clock)

    def answered(self, resp: requests.Response, method: str, url: str) -> str:
        """``HOST answered HTTP 503 (its words) to PUT /v2/...``: the cause of a retry."""
        return (
            f"{self.name} answered HTTP {resp.status_code} ({describe_body(resp)}) to "
            f"{method} {urlsplit(url).path}"
        )

    # --- ping -----------------------------------------------------------------------------

    def ping(self) -> str:
        """``GET /v2/`` once per client (``ping.ping``): picks http(s) for ``auto`` and reads
        the challenge. Returns the base URL (``https://host``)."""
        with self._ping_lock:
            if not self._base_url:
                self._base_url = ping.ping(self)
            return self._base_url

    def url(self, path: str) -> str:
        return f"{self.ping()}/v2/{path}"

    # --- requests -------------------------------------------------------------------------

    def request(
        self,
        method: str,
        url: str,
        *,
        scopes: list[str],
        action: str,
        repository: str,
        body: BodyOpener | bytes | Iterable[bytes] | None = None,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        stream: bool = False,
        retry: bool = True,
        reauth: bool = True,
    ) -> requests.Response:
        """One registry request with auth, re-auth on 401 (once, unless ``reauth`` is false)
        and, when ``retry``, backoff on transport errors and 408/429/5xx. ``body`` may be an
        opener so every attempt sends a fresh stream, or an iterable of chunks (sent once,
        with chunked transfer encoding). Returns whatever response came last; with ``retry``
        false, transport errors propagate as ``requests`` exceptions."""
        reauthed = False
        attempt = 0
        while True:
            try:
                resp = self._send(method, url, scopes, body, headers, params, stream)
            except TRANSPORT_ERRORS as err:
                if not retry:
                    raise
                attempt += 1
                self._after_transport_error(err, attempt, method, url, action, repository)
                continue
            if resp.status_code == 401 and not reauthed and reauth:
                reauthed = True
                if self._reauthenticate(resp, method, url):
                    continue
            if retry and resp.status_code in RETRY_STATUSES:
                attempt += 1
                if attempt < self.retry.attempts:
                    cause = self.answered(resp, method, url)
                    resp.close()
                    self.retrying(cause, self.wait(attempt - 1, resp), attempt + 1, resp=resp)
                    continue
            return resp

    def _send(
        self,
        method: str,
        url: str,
        scopes: list[str],
        body: BodyOpener | bytes | Iterable[bytes] | None,
        headers: Mapping[str, str] | None,
        params: Mapping[str, str] | None,
        stream: bool,
    ) -> requests.Response:
        """One try of a request: the auth header for ``scopes``, and a fresh body."""
        send = dict(headers or {})
        send.update(self.auth.header(scopes))
        with contextlib.ExitStack() as stack:
            data = stack.enter_context(body()) if callable(body) else body
            return self.transport.request(
                method,
                url,
                data=data,
                headers=send,
                params=params,
                stream=stream,
                timeout=(CONNECT_TIMEOUT, READ_TIMEOUT),
                verify=self.endpoint.verify,
            )

    def _after_transport_error(
        self, err: Exception, attempt: int, method: str, url: str, action: str, repository: str
    ) -> None:
        """Waits (announced) before try ``attempt + 1`` of a request that got no answer, or
        raises ``RegistryUnavailable`` once ``attempt`` tries are spent."""
        if attempt >= self.retry.attempts:
            raise unreachable(
                self.name,
                action,
                repository,
                err,
                self.secrets,
                connect_timeout=CONNECT_TIMEOUT,
                read_timeout=READ_TIMEOUT,
            ) from None
        cause = transport_cause(self.name, err, read_timeout=READ_TIMEOUT)
        said = f"{cause} ({method} {urlsplit(url).path})"
        self.retrying(said, self.wait(attempt - 1), attempt + 1)

    def _reauthenticate(self, resp: requests.Response, method: str, url: str) -> bool:
        """Takes in a 401; True when the request is worth sending again at once."""
        if not self.auth.unauthorized(resp):
            return False
        resp.close()
        self.say(
            f"{self.name} refused our token for {method} {urlsplit(url).path} "
            "(HTTP 401); authenticating again and retrying at once"
        )
        return True

    def fail(self, resp: requests.Response, action: str, repository: str) -> RegistryProblem:
        """The error for a failed answer, with its facts (``registry``, ``repository``,
        ``action``, ``http_status``, ``codes``)."""
        if resp.status_code == 401:
            creds = self.auth.creds()
            return auth_failure(
                resp,
                registry=self.name,
                action=action,
                repository=repository,
                username=creds.username if creds else None,
                secrets=self.secrets,
            )
        return error_for_response(
            resp,
            registry=self.name,
            action=action,
            repository=repository,
            secrets=self.secrets,
            username=(
                self._username()
                if resp.status_code == 403 or "DENIED" in registry_codes(resp)
                else None
            ),
        )

    def _username(self) -> str | None:
        """The account requests are made as, for messages (None when anonymous or unknown)."""
        try:
            creds = self.auth.creds()
        except Exception:
            return None
        return (creds.username or None) if creds else None

    def as_pusher(self, method: str, url: str, repository: str, **kwargs: Any) -> requests.Response:
        """A request made with push rights on ``repository``."""
        return self.request(
            method,
            url,
            scopes=[push_scope(repository)],
            action="push to",
            repository=repository,
            **kwargs,
        )

    def as_puller(self, method: str, url: str, repository: str, **kwargs: Any) -> requests.Response:
        """A request made with pull rights on ``repository``."""
        return self.request(
            method,
            url,
            scopes=[pull_scope(repository)],
            action="pull from",
            repository=repository,
            **kwargs,
        )

    # --- operations (see the modules named in the docstring) ------------------------------

    def blob_exists(self, repository: str, digest: str) -> bool:
        return blobs.blob_exists(self, repository, digest)

    def upload_blob(
        self,
        repository: str,
        digest: str,
        size: int,
        opener: BodyOpener,
        *,
        mount_from: str | None = None,
    ) -> str:
        """``uploads.upload_blob``: returns ``exists``, ``mounted`` or ``uploaded``."""
        return uploads.upload_blob(self, repository, digest, size, opener, mount_from=mount_from)

    def stream_blob(
        self, repository: str, chunks: Iterable[bytes], finish: Callable[[], tuple[str, int]]
    ) -> str:
        """``streamed.stream_blob``: returns the digest, or raises ``StreamFailed``."""
        return streamed.stream_blob(self, repository, chunks, finish)

    def get_blob(self, repository: str, digest: str, limit: int = 64 << 20) -> bytes:
        return blobs.get_blob(self, repository, digest, limit)

    def open_blob(
        self, repository: str, digest: str, size: int
    ) -> contextlib.AbstractContextManager[SizedStream]:
        return blobs.open_blob(self, repository, digest, size)

    def get_manifest(self, repository: str, reference: str) -> Manifest:
        return manifests.get_manifest(self, repository, reference)

    def manifest_digest(self, repository: str, reference: str, media_type: str) -> str | None:
        return manifests.manifest_digest(self, repository, reference, media_type)

    def put_manifest(self, repository: str, reference: str, body: bytes, media_type: str) -> str:
        """``manifests.put_manifest``: returns the digest once the registry confirmed it."""
        return manifests.put_manifest(self, repository, reference, body, media_type)
