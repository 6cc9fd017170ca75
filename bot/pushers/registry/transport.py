"""How the registry client reaches a registry: the ``Transport`` seam and its ``requests``
implementation.

``RegistryClient`` and its ``Authenticator`` send every HTTP request through a
``Transport``. ``RequestsTransport`` is the real one (TLS verification or a CA file as the
endpoint says, bodies streamed as given); ``tests/fakes/registry.py`` is an in-memory one.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from typing import IO, Protocol

import requests

# What a transport raises when a request did not get an answer (connection refused, reset or
# dropped, a timeout, a body cut short). Anything else a transport raises is a bug.
TRANSPORT_ERRORS = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
)
CONNECT_TIMEOUT = 15.0
READ_TIMEOUT = 300.0

Body = bytes | IO[bytes] | Iterable[bytes] | None
Params = Mapping[str, str] | Sequence[tuple[str, str]] | None


class Transport(Protocol):
    """Sends one HTTP request and returns the answer as a ``requests.Response``.

    ``data`` is sent as given: bytes, a file-like object with a known length (sent with
    ``Content-Length``) or an iterable of chunks (chunked transfer encoding). ``stream``
    leaves the body unread until the caller reads ``raw`` or ``iter_content``.
    ``timeout`` is ``(connect, read)`` seconds; ``verify`` is True, False or a CA file path.
    Raises one of ``TRANSPORT_ERRORS`` when no answer came (``requests.exceptions.SSLError``,
    a ``ConnectionError``, for a TLS failure). Must be safe to call from several threads."""

    def request(
        self,
        method: str,
        url: str,
        *,
        data: Body = None,
        headers: Mapping[str, str] | None = None,
        params: Params = None,
        stream: bool = False,
        timeout: float | tuple[float, float] = (CONNECT_TIMEOUT, READ_TIMEOUT),
        verify: bool | str = True,
        allow_redirects: bool = True,
    ) -> requests.Response: ...

    def close(self) -> None:
        """Releases the connections; the transport is not used afterwards."""


class RequestsTransport:
    """``Transport`` on ``requests``: one ``requests.Session`` per thread (connection reuse
    without sharing a session between threads), all closed by ``close``."""

    def __init__(self, user_agent: str = "wercker-bot") -> None:
        self.user_agent = user_agent
        self._local = threading.local()
        self._sessions: list[requests.Session] = []
        self._lock = threading.Lock()

    def _session(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            # verify is passed on every request: REQUESTS_CA_BUNDLE would override
            # session.verify (requests#3829).
            session.headers["User-Agent"] = self.user_agent
            self._local.session = session
            with self._lock:
                self._sessions.append(session)
        return session

    def request(
        self,
        method: str,
        url: str,
        *,
        data: Body = None,
        headers: Mapping[str, str] | None = None,
        params: Params = None,
        stream: bool = False,
        timeout: float | tuple[float, float] = (CONNECT_TIMEOUT, READ_TIMEOUT),
        verify: bool | str = True,
        allow_redirects: bool = True,
    ) -> requests.Response:
        return self._session().request(
            method,
            url,
            data=data,
            headers=headers,
            params=params,
            stream=stream,
            timeout=timeout,
            verify=verify,
            allow_redirects=allow_redirects,
        )

    def close(self) -> None:
        with self._lock:
            for session in self._sessions:
                session.close()
            self._sessions.clear()
