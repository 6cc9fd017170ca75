"""An in-memory Docker Registry HTTP API V2, typed against ``bot.pushers.registry.transport.
Transport``: hand it to a ``RegistryClient`` as its ``transport`` and every request lands here.

It answers what the client sends, the way distribution (the CNCF registry) does:

- ``GET /v2/``: 200, or 401 with a ``Basic`` or ``Bearer`` challenge (``auth=``);
- the token service (``https://<host>/token``): checks the Basic credentials, issues a token
  for the scopes asked for, or 401 ``{"details": "incorrect username or password"}``;
- blobs: ``HEAD``/``GET``, upload ``POST`` (with ``?mount=&from=``) → ``PATCH`` → ``PUT
  ?digest=`` (the digest checked), ``DELETE`` of a session;
- manifests: ``GET``/``HEAD``/``PUT`` by tag or digest, with ``Docker-Content-Digest``.

A request needing auth without a valid token (or with one lacking the scope) gets 401 and a
challenge naming the scope. Every request is recorded (``sent``), and faults can be queued
(``fail``, ``reset``, ``expire_tokens_on``): the next matching requests get them instead of
an answer. Real-service behaviour stays in ``tests/integration/registry``; this is for the
client's decisions (retries, waits, auth), in milliseconds.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
import threading
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit

import requests
import urllib3
from requests.structures import CaseInsensitiveDict
from urllib3.exceptions import ProtocolError

from bot.pushers.registry.transport import CONNECT_TIMEOUT, READ_TIMEOUT, Transport

AuthKind = Literal["none", "basic", "bearer"]

_PATH = re.compile(
    r"^/v2/(?P<name>.+?)/(?:blobs/uploads/(?P<upload>[^/]*)|blobs/(?P<digest>[^/]+)"
    r"|manifests/(?P<reference>[^/]+))$"
)


@dataclass(frozen=True)
class Sent:
    """One request as the registry received it."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: Mapping[str, str]
    body: bytes

    @property
    def authorization(self) -> str:
        return self.headers.get("Authorization", "")


@dataclass
class Fault:
    """What the next ``times`` requests matching ``method`` and ``path`` (a substring) get
    instead of an answer: ``status`` with ``headers`` and ``body``, a dropped connection
    (``reset``) or a 401 after every token is revoked (``expire``)."""

    method: str
    path: str
    times: int
    status: int = 503
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    reset: bool = False
    expire: bool = False

    def matches(self, method: str, path: str) -> bool:
        return self.times > 0 and method == self.method and self.path in path


def response(
    status: int, url: str, headers: Mapping[str, str] | None = None, body: bytes = b""
) -> requests.Response:
    """A ``requests.Response`` as ``requests`` would build it from the wire: headers, a
    ``raw`` stream (``read``/``iter_content`` work, as for ``stream=True``) and its URL."""
    resp = requests.Response()
    resp.status_code = status
    resp.headers = CaseInsensitiveDict(dict(headers or {}))
    resp.raw = urllib3.HTTPResponse(
        body=io.BytesIO(body), preload_content=False, status=status, headers=dict(resp.headers)
    )
    resp.url = url
    resp.encoding = "utf-8"
    return resp


def _read(data: object) -> bytes:
    """The bytes a transport would send for ``data`` (bytes, a file, or chunks)."""
    if data is None:
        return b""
    if isinstance(data, bytes):
        return data
    read = getattr(data, "read", None)
    if callable(read):
        out = read()
        return out if isinstance(out, bytes) else bytes(out)
    assert isinstance(data, Iterable)
    return b"".join(data)


def _errors(code: str, message: str) -> bytes:
    return json.dumps({"errors": [{"code": code, "message": message}]}).encode()


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class FakeRegistry:
    """``Transport``: an in-memory registry at ``host`` (see the module).

    ``auth``: ``none`` (anonymous), ``basic`` (``username``/``password`` on every request)
    or ``bearer`` (tokens from ``https://<host>/token``, ``service`` = ``host``)."""

    def __init__(
        self,
        host: str = "registry.test",
        *,
        auth: AuthKind = "none",
        username: str = "robot",
        password: str = "s3cret-pass",
        echo_digest: bool = True,
    ) -> None:
        self.host = host
        self.auth = auth
        self.username = username
        self.password = password
        self.echo_digest = echo_digest
        self.realm = f"https://{host}/token"
        self.blobs: dict[str, dict[str, bytes]] = {}
        self.manifests: dict[str, dict[str, tuple[bytes, str]]] = {}
        self.uploads: dict[str, tuple[str, bytearray]] = {}
        self.tokens: dict[str, tuple[str, ...]] = {}
        self.sent: list[Sent] = []
        self.faults: list[Fault] = []
        self.closed = False
        self._lock = threading.RLock()

    # --- faults ---------------------------------------------------------------------------

    def fail(
        self,
        method: str,
        path: str,
        status: int = 503,
        *,
        times: int = 1,
        retry_after: str | None = None,
        body: bytes = b"",
    ) -> None:
        """The next ``times`` matching requests are answered ``status`` (with
        ``Retry-After`` when given)."""
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        self.faults.append(Fault(method, path, times, status, headers, body))

    def reset(self, method: str, path: str, *, times: int = 1) -> None:
        """The next ``times`` matching requests lose their connection (reset by peer)."""
        self.faults.append(Fault(method, path, times, reset=True))

    def expire_tokens_on(self, method: str, path: str) -> None:
        """When the next matching request arrives, every token issued so far expires: that
        request gets a 401 challenge, as a registry does for a token that ran out mid-push."""
        self.faults.append(Fault(method, path, 1, status=401, expire=True))

    # --- what happened --------------------------------------------------------------------

    def requests_for(self, method: str, path: str = "") -> list[Sent]:
        return [s for s in self.sent if s.method == method and path in s.path]

    @property
    def token_requests(self) -> list[Sent]:
        return [s for s in self.sent if s.path == "/token"]

    # --- Transport ------------------------------------------------------------------------

    def request(
        self,
        method: str,
        url: str,
        *,
        data: bytes | IO[bytes] | Iterable[bytes] | None = None,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | Sequence[tuple[str, str]] | None = None,
        stream: bool = False,
        timeout: float | tuple[float, float] = (CONNECT_TIMEOUT, READ_TIMEOUT),
        verify: bool | str = True,
        allow_redirects: bool = True,
    ) -> requests.Response:
        parts = urlsplit(url)
        pairs = parse_qsl(parts.query, keep_blank_values=True)
        pairs += list(params.items()) if isinstance(params, Mapping) else list(params or [])
        query: dict[str, list[str]] = {}
        for key, value in pairs:
            query.setdefault(key, []).append(value)
        full = f"{parts.scheme}://{parts.netloc}{parts.path}"
        if pairs:
            full += "?" + urlencode(pairs)
        body = _read(data)
        sent = Sent(method, parts.path, query, CaseInsensitiveDict(dict(headers or {})), body)
        with self._lock:
            if parts.netloc != self.host:
                raise requests.ConnectionError(f"fake registry: no host {parts.netloc}")
            self.sent.append(sent)
            fault = next((f for f in self.faults if f.matches(method, parts.path)), None)
            if fault is not None:
                return self._fault(fault, full)
            return self._answer(sent, full)

    def close(self) -> None:
        self.closed = True

    # --- answers --------------------------------------------------------------------------

    def _fault(self, fault: Fault, url: str) -> requests.Response:
        fault.times -= 1
        if fault.reset:
            reset = ConnectionResetError(104, "Connection reset by peer")
            raise requests.ConnectionError(ProtocolError("Connection aborted.", reset))
        if fault.expire:
            self.tokens.clear()
            return self._challenge(url, [])
        body = fault.body or _errors("UNAVAILABLE", "service unavailable")
        return response(fault.status, url, fault.headers, body)

    def _answer(self, sent: Sent, url: str) -> requests.Response:
        if sent.path == "/token":
            return self._token(sent, url)
        if sent.path == "/v2/":
            if not self._authorized(sent, []):
                return self._challenge(url, [])
            return response(200, url, {"Content-Type": "application/json"}, b"{}")
        match = _PATH.match(sent.path)
        if match is None:
            return response(404, url, {}, _errors("NOT_FOUND", "no such route"))
        name = match["name"]
        needed = [f"repository:{name}:{'pull' if sent.method in ('GET', 'HEAD') else 'pull,push'}"]
        if match["upload"] is not None and sent.query.get("from"):
            needed.append(f"repository:{sent.query['from'][0]}:pull")
        if not self._authorized(sent, needed):
            return self._challenge(url, needed)
        if match["upload"] is not None:
            return self._upload(sent, url, name, match["upload"])
        if match["digest"] is not None:
            return self._blob(sent, url, name, match["digest"])
        return self._manifest(sent, url, name, match["reference"])

    def _authorized(self, sent: Sent, scopes: list[str]) -> bool:
        if self.auth == "none":
            return True
        header = sent.authorization
        if self.auth == "basic":
            return header == _basic(self.username, self.password)
        if not header.startswith("Bearer "):
            return False
        granted = self.tokens.get(header.removeprefix("Bearer "))
        return granted is not None and all(_covers(granted, s) for s in scopes)

    def _challenge(self, url: str, scopes: list[str]) -> requests.Response:
        if self.auth == "basic":
            value = f'Basic realm="{self.host}"'
        else:
            value = f'Bearer realm="{self.realm}",service="{self.host}"'
            if scopes:
                value += f',scope="{" ".join(scopes)}"'
        return response(
            401,
            url,
            {"WWW-Authenticate": value},
            _errors("UNAUTHORIZED", "authentication required"),
        )

    def _token(self, sent: Sent, url: str) -> requests.Response:
        if sent.authorization and sent.authorization != _basic(self.username, self.password):
            body = json.dumps({"details": "incorrect username or password"}).encode()
            return response(401, url, {"Content-Type": "application/json"}, body)
        scopes = tuple(sent.query.get("scope", []))
        if not sent.authorization:
            scopes = tuple(s for s in scopes if s.endswith(":pull"))  # anonymous: pull only
        token = uuid.uuid4().hex
        self.tokens[token] = scopes
        body = json.dumps({"token": token, "expires_in": 300}).encode()
        return response(200, url, {"Content-Type": "application/json"}, body)

    def _upload(self, sent: Sent, url: str, name: str, upload: str) -> requests.Response:
        if sent.method == "POST":
            mount, source = sent.query.get("mount", [""])[0], sent.query.get("from", [""])[0]
            if mount and mount in self.blobs.get(source, {}):
                self.blobs.setdefault(name, {})[mount] = self.blobs[source][mount]
                return self._blob_created(url, name, mount)
            key = uuid.uuid4().hex
            self.uploads[key] = (name, bytearray())
            return self._upload_state(202, url, name, key)
        if upload not in self.uploads:
            return response(404, url, {}, _errors("BLOB_UPLOAD_UNKNOWN", "blob upload unknown"))
        if sent.method == "DELETE":
            del self.uploads[upload]
            return response(204, url)
        self.uploads[upload][1].extend(sent.body)
        if sent.method == "PATCH":
            return self._upload_state(202, url, name, upload)
        data = bytes(self.uploads.pop(upload)[1])
        digest = sent.query.get("digest", [""])[0]
        if digest_of(data) != digest:
            return response(
                400, url, {}, _errors("DIGEST_INVALID", "provided digest did not match")
            )
        self.blobs.setdefault(name, {})[digest] = data
        return self._blob_created(url, name, digest)

    def _upload_state(self, status: int, url: str, name: str, key: str) -> requests.Response:
        received = len(self.uploads[key][1])
        headers = {
            "Location": f"/v2/{name}/blobs/uploads/{key}?_state={uuid.uuid4().hex[:8]}",
            "Range": f"0-{max(received - 1, 0)}",
            "Docker-Upload-UUID": key,
        }
        return response(status, url, headers)

    def _blob_created(self, url: str, name: str, digest: str) -> requests.Response:
        headers = {"Location": f"/v2/{name}/blobs/{digest}", "Docker-Content-Digest": digest}
        return response(201, url, headers)

    def _blob(self, sent: Sent, url: str, name: str, digest: str) -> requests.Response:
        data = self.blobs.get(name, {}).get(digest)
        if data is None:
            return response(404, url, {}, _errors("BLOB_UNKNOWN", "blob unknown to registry"))
        headers = {"Content-Length": str(len(data)), "Docker-Content-Digest": digest}
        return response(200, url, headers, b"" if sent.method == "HEAD" else data)

    def _manifest(self, sent: Sent, url: str, name: str, reference: str) -> requests.Response:
        stored = self.manifests.setdefault(name, {})
        if sent.method == "PUT":
            media_type = sent.headers.get("Content-Type", "")
            digest = digest_of(sent.body)
            stored[reference] = stored[digest] = (sent.body, media_type)
            headers = {"Location": f"/v2/{name}/manifests/{digest}"}
            if self.echo_digest:
                headers["Docker-Content-Digest"] = digest
            return response(201, url, headers)
        if reference not in stored:
            return response(404, url, {}, _errors("MANIFEST_UNKNOWN", "manifest unknown"))
        body, media_type = stored[reference]
        headers = {"Content-Type": media_type, "Docker-Content-Digest": digest_of(body)}
        return response(200, url, headers, b"" if sent.method == "HEAD" else body)


def _basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def _covers(granted: tuple[str, ...], scope: str) -> bool:
    """Whether a token granted ``granted`` covers ``scope`` (``pull,push`` covers ``pull``)."""
    _, name, actions = scope.split(":", 2)
    for item in granted:
        _, granted_name, granted_actions = item.split(":", 2)
        if granted_name == name and set(actions.split(",")) <= set(granted_actions.split(",")):
            return True
    return False


def _typed(registry: FakeRegistry) -> Transport:
    return registry  # mypy: the fake is a Transport
