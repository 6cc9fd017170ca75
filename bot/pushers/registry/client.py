"""A thin Docker Registry HTTP API V2 client on ``requests`` (registry-push.md §1).

One ``RegistryClient`` talks to one registry for one push and may be shared by worker
threads: each thread gets its own ``requests.Session``; the authenticator is shared.

Blob upload: ``HEAD`` (skip when present) → optional ``POST ?mount=&from=`` → ``POST`` →
one streamed ``PUT ?digest=`` with ``Content-Length``. A registry that refuses a body on
``PUT`` is switched to ``PATCH`` (whole blob, no ``Content-Range``) + empty ``PUT``. Any
failure while the body is in flight (dropped connection, 5xx, lost upload session, expired
token) restarts the blob from ``POST`` with a freshly opened body.

Streaming upload (``stream_blob``, a layer still being compressed, digest known only at the
end): ``POST`` → one ``PATCH`` carrying the bytes as they are produced, with chunked
transfer encoding (no ``Content-Length``, no ``Content-Range``) → empty ``PUT ?digest=``.
That is what docker, podman and skopeo send (registry-push.md §1.3), so distribution, Docker
Hub, ECR (one part, whatever its size), ghcr.io, Quay and JFrog take it. It is one attempt:
any failure (a refusal such as 405/411 Length Required/415/501, a dropped connection, a lost
session, an expired token) cancels the session, turns streaming off for the rest of this
client's push, and the caller uploads the finished temp file with ``upload_blob`` (retries,
Content-Length). Hosts known to refuse PATCH (Google Artifact Registry and gcr.io, which AR
now serves) never try it.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote, urljoin, urlsplit

import requests
import urllib3

from bot.errors import RegistryError, RegistryProblem, RegistryUnavailable
from bot.logs import Log
from bot.masking import Masker
from bot.pushers.model import RegistryAuth, Scheme
from bot.pushers.registry.auth import Authenticator, credentials_for
from bot.pushers.registry.endpoint import Endpoint, resolve_endpoint
from bot.pushers.registry.errors import (
    auth_failure,
    describe_body,
    error_for_response,
    registry_codes,
    transport_cause,
    transport_problem,
    unreachable,
)
from bot.pushers.target import split_host_port
from bot.settings import RegistrySettings

MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json"
MANIFEST_LIST_V2 = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MANIFEST_TYPES = (MANIFEST_V2, OCI_MANIFEST, MANIFEST_LIST_V2, OCI_INDEX)

RETRY_STATUSES = frozenset({408, 429, 499, 500, 502, 503, 504, 522})
UPLOAD_LOST_CODES = frozenset({"BLOB_UPLOAD_UNKNOWN", "BLOB_UPLOAD_INVALID"})
# Statuses with which a registry says "not a body on PUT": switch to PATCH + PUT.
PUT_UNSUPPORTED = frozenset({405, 415, 501})
TRANSPORT_ERRORS = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
)
# Google Artifact Registry (and gcr.io, served by it): monolithic uploads only.
NO_PATCH_HOSTS = re.compile(r"(^|\.)gcr\.io$|(^|[.-])docker\.pkg\.dev$")
PATCH_OK = (201, 202, 204)  # ECR answers a PATCH with 201
CONNECT_TIMEOUT = 15.0
READ_TIMEOUT = 300.0

BodyOpener = Callable[[], AbstractContextManager[Any]]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetryPolicy:
    """``attempts`` tries per request (and per blob upload); sleeps ``backoff * factor**n``
    seconds, or ``Retry-After`` when the registry sends one (capped at ``max_wait``). Nothing
    is slept after the last try. Every retry is announced in the build log first
    (``RegistryClient``: cause, wait, and which attempt of how many comes next)."""

    attempts: int = 4
    backoff: float = 1.0
    factor: float = 3.0
    max_wait: float = 60.0

    def wait(self, attempt: int, resp: requests.Response | None = None) -> float:
        if resp is not None:
            after = retry_after(resp)
            if after is not None:
                return min(after, self.max_wait)
        return min(self.backoff * self.factor**attempt, self.max_wait)


def _seconds(wait: float) -> str:
    """``2 s``, ``0.05 s``: a wait as a retry line shows it."""
    return f"{round(wait, 2):g} s"


def retry_after(resp: requests.Response) -> float | None:
    """``Retry-After`` in seconds (delta or HTTP date), or None."""
    value = resp.headers.get("Retry-After", "").strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


class SizedStream:
    """A read-once body of known length: ``requests`` sends it with ``Content-Length``
    instead of chunked encoding. Used to pipe a blob GET into an upload."""

    def __init__(self, chunks: Iterator[bytes], length: int) -> None:
        self._chunks = chunks
        self._buffer = b""
        self.len = length

    def __len__(self) -> int:
        return self.len

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self._buffer) < size:
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            self._buffer += chunk
        if size < 0:
            out, self._buffer = self._buffer, b""
        else:
            out, self._buffer = self._buffer[:size], self._buffer[size:]
        return out

    def __iter__(self) -> Iterator[bytes]:
        while True:
            block = self.read(1 << 20)
            if not block:
                return
            yield block


@dataclass(frozen=True)
class Manifest:
    """A manifest as the registry stores it: exact ``body`` bytes, ``media_type`` and
    ``digest`` (sha256 of the bytes)."""

    body: bytes
    media_type: str
    digest: str


class StreamAborted(Exception):
    """Raised by a streamed body's producer side: the blob must not be completed."""


class StreamFailed(Exception):
    """A streaming upload did not complete; the caller uploads from its file instead."""


def streaming_allowed(host: str) -> bool:
    """Whether a registry host may get a streamed PATCH (see the module docstring)."""
    return not NO_PATCH_HOSTS.search(split_host_port(host)[0].lower())


class _Restart(Exception):
    """The blob upload must start again from POST (after ``wait`` seconds; ``resp`` is the
    answer that asked for it, whose ``Retry-After`` set ``wait``)."""

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


def _range_end(value: str) -> int | None:
    """Bytes received according to a ``Range: 0-<last>`` (or ``bytes=0-<last>``) header."""
    _, _, last = value.removeprefix("bytes=").partition("-")
    try:
        return int(last) + 1
    except ValueError:
        return None


def pull_scope(repository: str) -> str:
    return f"repository:{repository}:pull"


def push_scope(repository: str) -> str:
    return f"repository:{repository}:pull,push"


class RegistryClient:
    """Speaks to the registry ``name`` (as images name it; ``mirror_of`` may send requests
    elsewhere). Methods raise ``RegistryAuthError``/``RegistryUnavailable``/``RegistryError``
    with user-facing, credential-free messages."""

    def __init__(
        self,
        name: str,
        scheme: Scheme,
        auth: RegistryAuth,
        registries: Mapping[str, RegistrySettings],
        *,
        retry: RetryPolicy | None = None,
        log: Log | None = None,
    ) -> None:
        self.endpoint: Endpoint = resolve_endpoint(name, scheme, registries)
        self.name = name
        self.retry = retry or RetryPolicy()
        # Where retries are announced: the build log of the push (the bot's log without one).
        self.log = log
        self._registry_auth = auth
        self._local = threading.local()
        self._sessions: list[requests.Session] = []
        self._sessions_lock = threading.Lock()
        self.auth = Authenticator(
            self.endpoint,
            lambda: credentials_for(self.endpoint, auth, self._say),
            session=self._session,
            secrets=auth.secrets(),
        )
        if self.endpoint.verify is False:
            # Unverified TLS is a decision (loopback, or `insecure = true`), not news to log.
            warnings.filterwarnings("ignore", category=urllib3.exceptions.InsecureRequestWarning)
        self._base_url = ""
        self._ping_lock = threading.Lock()
        self.upload_mode = "put"
        self.streaming = streaming_allowed(self.endpoint.host)

    # --- plumbing -------------------------------------------------------------------------

    def _session(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            # verify is passed on every request: REQUESTS_CA_BUNDLE would override
            # session.verify (requests#3829).
            session.headers["User-Agent"] = "wercker-bot"
            self._local.session = session
            with self._sessions_lock:
                self._sessions.append(session)
        return session

    def close(self) -> None:
        with self._sessions_lock:
            for session in self._sessions:
                session.close()
            self._sessions.clear()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def secrets(self) -> list[str]:
        return self.auth.secrets

    def _say(self, message: str) -> None:
        """One warning line in the build log (masked with this push's credentials too)."""
        message = Masker(self.secrets).mask(message)
        if self.log is not None:
            self.log.warn(message)
        else:
            logger.warning("%s", message)

    def _retrying(
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
        asked = retry_after(resp) if resp is not None else None
        when = _seconds(wait)
        if asked is not None and asked > wait:
            when += (
                f" (its Retry-After asked for {_seconds(asked)}; we wait at most "
                f"{_seconds(self.retry.max_wait)})"
            )
        elif asked is not None and _seconds(asked) == _seconds(wait):
            when += ", as its Retry-After asks"
        self._say(f"{cause}; {again} in {when} (attempt {attempt} of {self.retry.attempts})")
        time.sleep(wait)

    def _answered(self, resp: requests.Response, method: str, url: str) -> str:
        """``HOST answered HTTP 503 (its words) to PUT /v2/...``: the cause of a retry."""
        return (
            f"{self.name} answered HTTP {resp.status_code} ({describe_body(resp)}) to "
            f"{method} {urlsplit(url).path}"
        )

    def ping(self) -> str:
        """``GET /v2/`` once per client: picks http(s) for ``auto`` and reads the challenge.
        Returns the base URL (``https://host``)."""
        with self._ping_lock:
            if self._base_url:
                return self._base_url
            last: Exception | None = None
            for attempt in range(self.retry.attempts):
                busy: requests.Response | None = None
                only_tls_errors = True
                for scheme in self.endpoint.schemes:
                    base = f"{scheme}://{self.endpoint.host}"
                    try:
                        resp = self._session().get(
                            f"{base}/v2/",
                            timeout=(CONNECT_TIMEOUT, 60),
                            verify=self.endpoint.verify,
                        )
                    except requests.exceptions.SSLError as err:
                        last = err  # a plain-HTTP server or an untrusted certificate
                        continue
                    except TRANSPORT_ERRORS as err:
                        last, only_tls_errors = err, False
                        continue
                    only_tls_errors = False
                    if resp.status_code in RETRY_STATUSES and attempt + 1 < self.retry.attempts:
                        busy = resp
                        break
                    if resp.status_code >= 500 or resp.status_code in RETRY_STATUSES:
                        failed = self.fail(resp, "answer for", "/v2/")
                        failed.repository = None  # the ping names no repository
                        raise failed
                    if resp.status_code not in (200, 401):
                        raise RegistryError(
                            f"{self.name} does not look like a registry: GET {base}/v2/ "
                            f"answered HTTP {resp.status_code} ({describe_body(resp)})",
                            registry=self.name,
                            action="ping",
                            http_status=resp.status_code,
                            codes=tuple(registry_codes(resp)),
                        )
                    self.auth.start(base, resp)
                    self._base_url = base
                    return base
                if only_tls_errors:
                    break  # certificates do not get better by waiting
                if attempt + 1 >= self.retry.attempts:
                    break  # no point waiting after the last try
                if busy is not None:
                    cause = self._answered(busy, "GET", "/v2/")
                else:
                    assert last is not None
                    cause = transport_cause(self.name, last, read_timeout=60)
                self._retrying(cause, self.retry.wait(attempt, busy), attempt + 2, resp=busy)
            assert last is not None
            raise unreachable(
                self.name,
                "connect",
                None,
                last,
                self.secrets,
                connect_timeout=CONNECT_TIMEOUT,
                read_timeout=60,
            )

    def url(self, path: str) -> str:
        return f"{self.ping()}/v2/{path}"

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
            send = dict(headers or {})
            send.update(self.auth.header(scopes))
            with contextlib.ExitStack() as stack:
                data = stack.enter_context(body()) if callable(body) else body
                try:
                    resp = self._session().request(
                        method,
                        url,
                        data=data,
                        headers=send,
                        params=params,
                        stream=stream,
                        timeout=(CONNECT_TIMEOUT, READ_TIMEOUT),
                        verify=self.endpoint.verify,
                    )
                except TRANSPORT_ERRORS as err:
                    if not retry:
                        raise
                    attempt += 1
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
                    self._retrying(
                        f"{cause} ({method} {urlsplit(url).path})",
                        self.retry.wait(attempt - 1),
                        attempt + 1,
                    )
                    continue
            if resp.status_code == 401 and not reauthed and reauth:
                reauthed = True
                if self.auth.unauthorized(resp):
                    resp.close()
                    self._say(
                        f"{self.name} refused our token for {method} {urlsplit(url).path} "
                        "(HTTP 401); authenticating again and retrying at once"
                    )
                    continue
            if retry and resp.status_code in RETRY_STATUSES:
                attempt += 1
                if attempt < self.retry.attempts:
                    cause = self._answered(resp, method, url)
                    resp.close()
                    self._retrying(
                        cause, self.retry.wait(attempt - 1, resp), attempt + 1, resp=resp
                    )
                    continue
            return resp

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

    def _as_pusher(
        self, method: str, url: str, repository: str, **kwargs: Any
    ) -> requests.Response:
        """A request made with push rights on ``repository``."""
        return self.request(
            method,
            url,
            scopes=[push_scope(repository)],
            action="push to",
            repository=repository,
            **kwargs,
        )

    def _as_puller(
        self, method: str, url: str, repository: str, **kwargs: Any
    ) -> requests.Response:
        """A request made with pull rights on ``repository``."""
        return self.request(
            method,
            url,
            scopes=[pull_scope(repository)],
            action="pull from",
            repository=repository,
            **kwargs,
        )

    # --- blobs ----------------------------------------------------------------------------

    def blob_exists(self, repository: str, digest: str) -> bool:
        resp = self._as_pusher(
            "HEAD",
            self.url(f"{repository}/blobs/{digest}"),
            repository,
        )
        if resp.status_code == 200:
            return True
        if resp.status_code == 404:
            return False
        raise self.fail(resp, "push to", repository)

    def _location(self, resp: requests.Response) -> str:
        loc = resp.headers.get("Location")
        if not loc:
            raise RegistryError(
                f"{self.name} opened an upload without a Location header",
                registry=self.name,
                action="push",
                http_status=resp.status_code,
            )
        return urljoin(resp.url, loc)

    def _start_upload(self, repository: str, mount: str | None, source: str | None) -> str | None:
        """Opens an upload session; returns its URL, or None when the blob was mounted."""
        params = {"mount": mount, "from": source} if mount and source else None
        scopes = [push_scope(repository)] + ([pull_scope(source)] if source else [])
        resp = self.request(
            "POST",
            self.url(f"{repository}/blobs/uploads/"),
            scopes=scopes,
            action="push to",
            repository=repository,
            params=params,
        )
        if resp.status_code == 201 and params:
            return None
        if resp.status_code == 202:
            return self._location(resp)
        if params:
            # A mount the registry will not do (or these credentials may not read the source
            # for) is no reason to fail: upload instead.
            resp.close()
            return self._start_upload(repository, None, None)
        raise self.fail(resp, "push to", repository)

    @staticmethod
    def _with_digest(location: str, digest: str) -> str:
        return f"{location}{'&' if '?' in location else '?'}digest={quote(digest)}"

    def _send_body(
        self, method: str, url: str, repository: str, opener: BodyOpener, headers: dict[str, str]
    ) -> requests.Response:
        try:
            resp = self.request(
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
            raise _Restart(transport_cause(self.name, err, read_timeout=READ_TIMEOUT)) from err
        return resp

    def _check_upload_answer(
        self, resp: requests.Response, repository: str, ok: tuple[int, ...], attempt: int
    ) -> None:
        if resp.status_code in ok:
            return
        codes = registry_codes(resp)
        if resp.status_code in RETRY_STATUSES:
            raise _Restart(
                f"{self.name} answered HTTP {resp.status_code} ({describe_body(resp)})",
                self.retry.wait(attempt, resp),
                resp=resp,
            )
        if resp.status_code == 404 and (UPLOAD_LOST_CODES & set(codes) or not codes):
            said = f" {', '.join(codes)}" if codes else ""
            raise _Restart(f"{self.name} lost the upload session (HTTP 404{said})")
        # The body is spent: a new session with a fresh token and a reopened body.
        if resp.status_code == 401 and self.auth.unauthorized(resp):
            raise _Restart(f"{self.name} refused our token during the upload (HTTP 401)")
        if resp.status_code in PUT_UNSUPPORTED and self.upload_mode == "put":
            self.upload_mode = "patch"
            raise _Restart(
                f"{self.name} refused a body on PUT (HTTP {resp.status_code}); switching to PATCH"
            )
        raise _Restart("fatal", fatal=self.fail(resp, "push to", repository))

    def upload_blob(
        self,
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
        ``uploaded``.
        """
        if self.blob_exists(repository, digest):
            return "exists"
        mount = mount_from
        last = "no attempt"
        last_status: int | None = None
        for attempt in range(self.retry.attempts):
            location = None
            try:
                location = self._start_upload(repository, digest if mount else None, mount)
                if location is None:
                    return "mounted"
                mount = None
                headers = {"Content-Type": "application/octet-stream"}
                if self.upload_mode == "put":
                    resp = self._send_body(
                        "PUT", self._with_digest(location, digest), repository, opener, headers
                    )
                    self._check_upload_answer(resp, repository, (201,), attempt)
                else:
                    resp = self._send_body("PATCH", location, repository, opener, headers)
                    self._check_upload_answer(resp, repository, (201, 202, 204), attempt)
                    location = self._location(resp)
                    resp = self._close_upload(location, digest, repository)
                    self._check_upload_answer(resp, repository, (201,), attempt)
                return "uploaded"
            except _Restart as restart:
                if location:
                    self._cancel(location, repository)
                if restart.fatal is not None:
                    raise restart.fatal from None
                last = str(restart)
                last_status = restart.resp.status_code if restart.resp is not None else None
                if attempt + 1 < self.retry.attempts:  # no point waiting after the last try
                    self._retrying(
                        f"upload of blob {digest[:19]}… to {repository} failed: {restart}",
                        restart.wait or self.retry.wait(attempt),
                        attempt + 2,
                        resp=restart.resp,
                        again="uploading it again from the start",
                    )
        if self.blob_exists(repository, digest):
            return "uploaded"  # a failed answer to a request that did get through
        raise RegistryUnavailable(
            Masker(self.secrets).mask(
                f"{self.name} failed to push to {repository}: blob {digest[:19]}… did not "
                f"upload after {self.retry.attempts} tries ({last})"
            ),
            registry=self.name,
            repository=repository,
            action="push",
            http_status=last_status,
        )

    def _close_upload(
        self, location: str, digest: str, repository: str, *, once: bool = False
    ) -> requests.Response:
        """The empty ``PUT ?digest=`` that completes an upload session. ``once``: no retry
        and no re-auth (the streaming path falls back to the file instead)."""
        return self._as_pusher(
            "PUT",
            self._with_digest(location, digest),
            repository,
            body=b"",
            headers={"Content-Length": "0"},
            retry=not once,
            reauth=not once,
        )

    def stream_blob(
        self, repository: str, chunks: Iterable[bytes], finish: Callable[[], tuple[str, int]]
    ) -> str:
        """Uploads a blob while it is produced: ``POST``, one ``PATCH`` sending ``chunks``
        as they come (chunked transfer encoding), then ``PUT ?digest=`` with the digest
        ``finish()`` returns once ``chunks`` is exhausted (with the size, checked against the
        ``Range`` the registry reports). Returns the digest.

        One attempt, no retry: a registry error on ``POST`` is raised as usual; anything that
        goes wrong once the body is in flight cancels the session, turns ``streaming`` off
        for this client and raises ``StreamFailed`` (upload the finished file instead)."""
        location = self._start_upload(repository, None, None)
        assert location is not None
        try:
            try:
                resp = self._as_pusher(
                    "PATCH",
                    location,
                    repository,
                    body=chunks,
                    headers={"Content-Type": "application/octet-stream"},
                    retry=False,
                    reauth=False,
                )
            except TRANSPORT_ERRORS as err:
                raise StreamFailed(
                    transport_problem(self.name, err, action="push to", repository=repository)
                ) from None
            if resp.status_code not in PATCH_OK:
                raise StreamFailed(f"PATCH answered HTTP {resp.status_code}: {describe_body(resp)}")
            digest, size = finish()
            received = _range_end(resp.headers.get("Range", ""))
            if received is not None and received != size:
                raise StreamFailed(f"the registry received {received} of {size} bytes")
            if resp.headers.get("Location"):
                location = self._location(resp)
            try:
                resp = self._close_upload(location, digest, repository, once=True)
            except TRANSPORT_ERRORS as err:
                raise StreamFailed(
                    transport_problem(self.name, err, action="push to", repository=repository)
                ) from None
            if resp.status_code != 201:
                raise StreamFailed(f"PUT answered HTTP {resp.status_code}: {describe_body(resp)}")
            return digest
        except StreamFailed:
            self.streaming = False
            self._cancel(location, repository)
            raise
        except StreamAborted as err:  # the producer failed: its own error follows
            self.streaming = False
            self._cancel(location, repository)
            raise StreamFailed(str(err)) from None
        except BaseException:
            self._cancel(location, repository)
            raise

    def _cancel(self, location: str, repository: str) -> None:
        with contextlib.suppress(Exception):
            self._session().delete(
                location,
                headers=self.auth.header([push_scope(repository)]),
                timeout=10,
                verify=self.endpoint.verify,
            ).close()

    def get_blob(self, repository: str, digest: str, limit: int = 64 << 20) -> bytes:
        """A small blob (a config), read whole and checked against ``digest``."""
        resp = self._as_puller(
            "GET",
            self.url(f"{repository}/blobs/{digest}"),
            repository,
            stream=True,
        )
        if resp.status_code != 200:
            raise self.fail(resp, "pull from", repository)
        data = resp.raw.read(limit + 1, decode_content=True)
        resp.close()
        if len(data) > limit:
            raise RegistryError(
                f"{self.name}: blob {digest} in {repository} is too large",
                registry=self.name,
                repository=repository,
                action="pull",
            )
        if "sha256:" + hashlib.sha256(data).hexdigest() != digest:
            raise RegistryError(
                f"{self.name}: blob {digest} in {repository} is corrupt",
                registry=self.name,
                repository=repository,
                action="pull",
            )
        return data

    @contextlib.contextmanager
    def open_blob(self, repository: str, digest: str, size: int) -> Iterator[SizedStream]:
        """Streams a blob (constant memory) as a ``SizedStream`` of ``size`` bytes."""
        resp = self._as_puller(
            "GET",
            self.url(f"{repository}/blobs/{digest}"),
            repository,
            stream=True,
        )
        try:
            if resp.status_code != 200:
                raise self.fail(resp, "pull from", repository)
            yield SizedStream(resp.iter_content(1 << 20), size)
        finally:
            resp.close()

    # --- manifests ------------------------------------------------------------------------

    def get_manifest(self, repository: str, reference: str) -> Manifest:
        resp = self._as_puller(
            "GET",
            self.url(f"{repository}/manifests/{reference}"),
            repository,
            headers={"Accept": ", ".join(MANIFEST_TYPES)},
        )
        if resp.status_code != 200:
            raise self.fail(resp, f"pull {reference} from", repository)
        body = resp.content
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        if reference.startswith("sha256:") and digest != reference:
            raise RegistryError(
                f"{self.name}: manifest {reference} of {repository} is corrupt",
                registry=self.name,
                repository=repository,
                action="pull",
            )
        media_type = resp.headers.get("Content-Type", "").split(";")[0].strip()
        return Manifest(body, media_type, digest)

    def manifest_digest(self, repository: str, reference: str, media_type: str) -> str | None:
        """The digest ``reference`` points at (``HEAD``, which registries do not rate-limit),
        or None when it does not exist or the registry does not say."""
        resp = self._as_pusher(
            "HEAD",
            self.url(f"{repository}/manifests/{reference}"),
            repository,
            headers={"Accept": media_type},
        )
        if resp.status_code == 200:
            return resp.headers.get("Docker-Content-Digest")
        if resp.status_code == 404:
            return None
        raise self.fail(resp, "push to", repository)

    def put_manifest(self, repository: str, reference: str, body: bytes, media_type: str) -> str:
        """Stores the exact ``body`` under ``reference``; returns its digest once the registry
        has confirmed it (behaviour §7): the ``Docker-Content-Digest`` of the answer must be
        our own sha256 of the bytes. A registry (or proxy) that leaves the header out is asked
        again with ``HEAD manifests/<reference>``; a different digest, or still none, is a
        ``RegistryError`` naming both."""
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        resp = self._as_pusher(
            "PUT",
            self.url(f"{repository}/manifests/{reference}"),
            repository,
            body=body,
            headers={"Content-Type": media_type},
        )
        if resp.status_code not in (200, 201):
            raise self.fail(resp, f"push {reference} to", repository)
        echoed = resp.headers.get("Docker-Content-Digest")
        if echoed and echoed != digest:
            raise RegistryError(
                f"{self.name} stored {repository}:{reference} as {echoed}, but the manifest we "
                f"sent is {digest}; the registry or a proxy changed it",
                registry=self.name,
                repository=repository,
                action="push",
                http_status=resp.status_code,
            )
        if not echoed:
            self._confirm_manifest(repository, reference, media_type, digest)
        return digest

    def _confirm_manifest(
        self, repository: str, reference: str, media_type: str, digest: str
    ) -> None:
        """``HEAD manifests/<reference>`` until it names a digest (a few tries: a registry on
        eventually consistent storage may not show a new tag at once); it must be ``digest``."""
        tries = max(1, min(3, self.retry.attempts))
        stored: str | None = None
        for attempt in range(tries):
            stored = self.manifest_digest(repository, reference, media_type)
            if stored:
                break
            if attempt + 1 < tries:
                self._say(
                    f"{self.name} named no digest for {repository}:{reference} yet (HEAD); "
                    f"asking again in {_seconds(self.retry.wait(attempt))} "
                    f"(attempt {attempt + 2} of {tries})"
                )
                time.sleep(self.retry.wait(attempt))
        if stored == digest:
            return
        if stored:
            raise RegistryError(
                f"{self.name} did not confirm the push of {repository}:{reference}: it sent no "
                f"Docker-Content-Digest, and HEAD says the tag is {stored}, but the manifest we "
                f"sent is {digest}; the registry or a proxy changed it",
                registry=self.name,
                repository=repository,
                action="push",
            )
        raise RegistryError(
            f"{self.name} did not confirm the push of {repository}:{reference}: the manifest we "
            f"sent is {digest}, but the registry named no digest (none in the PUT answer, none "
            "from HEAD); the push is not confirmed",
            registry=self.name,
            repository=repository,
            action="push",
        )
