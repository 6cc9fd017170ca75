"""A recording fake of GitHub's commit statuses API, plus webhook helpers.

Registered as a pytest plugin in ``tests/conftest.py``.

Fixture ``github_fake`` (function-scoped) yields a ``GitHubFake``: a real HTTP server on
``127.0.0.1:<free port>`` in a background thread, stopped after the test.

Routes (``owner``/``repo`` match case-insensitively, as on GitHub):

- ``POST /repos/{owner}/{repo}/statuses/{sha}`` → 201 with a ``status`` object shaped per the
  OpenAPI ``components/schemas/status``, and a ``Location`` header.
- ``GET /repos/{owner}/{repo}/commits/{ref}/statuses`` → the statuses, newest first.
- ``GET /repos/{owner}/{repo}/commits/{ref}/status`` → the combined status (GitHub's rules:
  failure if any error/failure, pending if none or any pending, else success).

Every request is recorded. A POST is validated against GitHub's OpenAPI fragment
``../shared/github/openapi/repos/create-commit-status.json`` (read in place; an equivalent
built-in schema when ``../shared`` is absent) plus rules GitHub enforces but does not document
there: a 40-hex ``sha``, a ``description`` of at most 140 characters (counted in UTF-16 units,
the conservative reading). A violating request is answered 422 the way GitHub does and appended
to ``violations``, so end-to-end tests end with ``assert github_fake.violations == []``.

API of ``GitHubFake``:

- ``url``: the ``api_url`` to put in the bot's config (``[github] api_url``).
- ``requests``: list of ``Recorded(method, path, headers, body, status)``; ``headers`` has
  lower-cased keys, ``body`` is the parsed JSON (or None), ``status`` what the fake answered
  (0: the connection was dropped).
- ``violations``: list of ``Violation(request, problems)``.
- ``statuses(repo, sha)`` → list of the accepted POST bodies for that commit, in order.
- ``final_states(repo, sha)`` → ``{context: state}`` of the latest status per context.
- ``wait_for(predicate, timeout=5.0)`` → the predicate's first truthy value; raises
  ``AssertionError`` (listing what was received) on timeout.
- ``fail_next(n, status=503, headers=None, body=None)``: the next ``n`` requests (any route)
  get that answer and are not stored.
- ``rate_limit(n=1, *, status=429, retry_after=None, reset_in=None)``: the next ``n`` requests
  are rate limited, with ``Retry-After`` and/or ``x-ratelimit-remaining: 0`` +
  ``x-ratelimit-reset`` (now + ``reset_in``), and GitHub's message.
- ``down()`` / ``up()``: while down, every connection is closed without an answer (the client
  sees a connection error).
- ``missing_commit(sha)``: POSTs to that sha get 422 "No commit found for SHA: <sha>".
- ``require_token(token)``: from then on, requests without ``Authorization: Bearer|token
  <token>`` get 401 "Bad credentials".
- ``reset()``: forget requests, statuses, violations and scripted failures.

Helpers for webhook tests (no server involved):

- ``sign(secret, body) -> str``: the ``X-Hub-Signature-256`` value for ``body``.
- ``push_payload(repo_full_name, ref, sha, *, before=None, message=..., private=False,
  deleted=False, tag_object=None, pusher="Codertocat") -> dict``: GitHub's own example
  ``payloads/push/with-new-branch.payload.json`` re-aimed at that repo/ref/commit (a minimal
  documented dict when ``../shared`` is absent). ``tag_object`` makes ``after`` an annotated
  tag object whose ``head_commit.id`` is ``sha``.
- ``webhook_headers(body, secret, event="push", delivery=None, hook_id="1",
  content_type="application/json") -> dict``: the headers GitHub sends with ``body``.
- ``form_body(payload) -> bytes``: the ``application/x-www-form-urlencoded`` body GitHub
  sends for ``payload``.
- ``example_path(kind, name) -> Path``: one of GitHub's example payloads, read in place.
- ``status_response_schema()``: OpenAPI ``components/schemas/status`` as JSON Schema (or None
  without ``../shared``), to check a response.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote, urlencode, urlsplit

import jsonschema
import pytest

from tests.harness.paths import GITHUB_DATA

T = TypeVar("T")

CREATE_STATUS_SPEC = GITHUB_DATA / "openapi" / "repos" / "create-commit-status.json"
PUSH_EXAMPLE = GITHUB_DATA / "payloads" / "push" / "with-new-branch.payload.json"
ZERO_SHA = "0" * 40
_SHA = re.compile(r"^[0-9a-fA-F]{40}$")
_STATUS_POST = re.compile(r"^/repos/([^/]+)/([^/]+)/statuses/(.+)$")
_COMMIT_GET = re.compile(r"^/repos/([^/]+)/([^/]+)/commits/(.+)/(statuses|status)$")
_DOCS = "https://docs.github.com/rest/commits/statuses#create-a-commit-status"

# Used only when ../shared is absent; mirrors the OpenAPI fragment's request body schema.
_FALLBACK_BODY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "state": {"type": "string", "enum": ["error", "failure", "pending", "success"]},
        "target_url": {"type": "string", "nullable": True},
        "description": {"type": "string", "nullable": True},
        "context": {"type": "string", "default": "default"},
    },
    "required": ["state"],
}


# --------------------------------------------------------------------------- schema


def openapi_to_jsonschema(schema: Any) -> Any:
    """OpenAPI 3.0 schema → JSON Schema: ``nullable: true`` becomes a ``null`` type."""
    if isinstance(schema, list):
        return [openapi_to_jsonschema(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: openapi_to_jsonschema(v) for k, v in schema.items() if k != "nullable"}
    if schema.get("nullable") and isinstance(schema.get("type"), str):
        out["type"] = [schema["type"], "null"]
    return out


def load_create_status_spec() -> tuple[dict[str, Any], str]:
    """The request-body JSON Schema for create-commit-status, and where it came from."""
    if CREATE_STATUS_SPEC.exists():
        spec = json.loads(CREATE_STATUS_SPEC.read_text(encoding="utf-8"))
        op = spec["paths"]["/repos/{owner}/{repo}/statuses/{sha}"]["post"]
        body = op["requestBody"]["content"]["application/json"]["schema"]
        return openapi_to_jsonschema(body), str(CREATE_STATUS_SPEC)
    return openapi_to_jsonschema(_FALLBACK_BODY_SCHEMA), "built-in fallback"


def status_response_schema() -> dict[str, Any] | None:
    """``components/schemas/status`` as JSON Schema (``creator`` left open: its ``$ref`` is
    unresolved in the fragment), or None when ``../shared`` is absent."""
    if not CREATE_STATUS_SPEC.exists():
        return None
    spec = json.loads(CREATE_STATUS_SPEC.read_text(encoding="utf-8"))
    schema = copy.deepcopy(spec["components"]["schemas"]["status"])
    schema["properties"]["creator"] = {"type": ["object", "null"]}
    return dict(openapi_to_jsonschema(schema))


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


# --------------------------------------------------------------------------- records


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: Any
    status: int = 0
    raw: bytes = b""


@dataclass
class Violation:
    request: Recorded
    problems: list[str]

    def __str__(self) -> str:
        return f"{self.request.method} {self.request.path}: {'; '.join(self.problems)}"


@dataclass
class _Scripted:
    status: int
    headers: dict[str, str]
    body: Any


@dataclass
class _Stored:
    owner_repo: str
    sha: str
    body: dict[str, Any]
    response: dict[str, Any]


@dataclass
class GitHubFake:
    """See the module docstring for the API."""

    url: str = ""
    requests: list[Recorded] = field(default_factory=list)
    violations: list[Violation] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.RLock()
        self._stored: list[_Stored] = []
        self._scripted: list[_Scripted] = []
        self._down = False
        self._missing: set[str] = set()
        self._token: str | None = None
        self._next_id = 1
        self.schema, self.schema_source = load_create_status_spec()
        self._validator = jsonschema.Draft7Validator(self.schema)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ---- lifecycle

    def start(self) -> GitHubFake:
        fake = self

        class Handler(_Handler):
            pass

        Handler.fake = fake
        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        self._server = server
        self.url = f"http://127.0.0.1:{server.server_address[1]}"
        # A short poll keeps shutdown() (and so each test's teardown) fast.
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.02}, name="github-fake"
        )
        self._thread.daemon = True
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    # ---- scripting

    def fail_next(
        self,
        n: int = 1,
        status: int = 503,
        headers: dict[str, str] | None = None,
        body: Any = None,
    ) -> None:
        if body is None:
            body = {"message": "Service Unavailable" if status == 503 else f"HTTP {status}"}
        with self._lock:
            self._scripted.extend(_Scripted(status, dict(headers or {}), body) for _ in range(n))

    def rate_limit(
        self,
        n: int = 1,
        *,
        status: int = 429,
        retry_after: int | None = None,
        reset_in: float | None = None,
    ) -> None:
        headers: dict[str, str] = {}
        if retry_after is not None:
            headers["Retry-After"] = str(retry_after)
        if reset_in is not None:
            headers["x-ratelimit-limit"] = "5000"
            headers["x-ratelimit-remaining"] = "0"
            headers["x-ratelimit-used"] = "5000"
            headers["x-ratelimit-reset"] = str(int(time.time() + reset_in))
            headers["x-ratelimit-resource"] = "core"
            message = "API rate limit exceeded for user ID 1."
        else:
            message = "You have exceeded a secondary rate limit. Please wait a few minutes."
        self.fail_next(n, status, headers, {"message": message, "documentation_url": _DOCS})

    def down(self) -> None:
        with self._lock:
            self._down = True

    def up(self) -> None:
        with self._lock:
            self._down = False

    def missing_commit(self, sha: str) -> None:
        with self._lock:
            self._missing.add(sha.lower())

    def require_token(self, token: str) -> None:
        with self._lock:
            self._token = token

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self.violations.clear()
            self._stored.clear()
            self._scripted.clear()
            self._missing.clear()
            self._down = False

    # ---- reading

    def statuses(self, repo: str, sha: str) -> list[dict[str, Any]]:
        with self._lock:
            return [copy.deepcopy(s.body) for s in self._matching(repo, sha)]

    def final_states(self, repo: str, sha: str) -> dict[str, str]:
        latest: dict[str, str] = {}
        for body in self.statuses(repo, sha):
            latest[str(body.get("context", "default"))] = str(body["state"])
        return latest

    def wait_for(self, predicate: Callable[[], T | None], timeout: float = 5.0) -> T:
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() >= deadline:
                with self._lock:
                    seen = [f"{r.method} {r.path} → {r.status} {r.body}" for r in self.requests]
                raise AssertionError(
                    f"github fake: condition not met within {timeout}s; requests: {seen}"
                )
            time.sleep(0.02)

    def _matching(self, repo: str, sha: str) -> list[_Stored]:
        return [s for s in self._stored if s.owner_repo == repo.lower() and s.sha == sha.lower()]

    # ---- serving (called from the handler threads)

    def handle(self, rec: Recorded) -> tuple[int, dict[str, str], Any]:
        with self._lock:
            self.requests.append(rec)
            if self._down:
                return 0, {}, None
            if self._scripted:
                scripted = self._scripted.pop(0)
                return scripted.status, scripted.headers, scripted.body
            if self._token is not None and not _has_token(rec.headers, self._token):
                return 401, {}, {"message": "Bad credentials", "documentation_url": _DOCS}
            path = urlsplit(rec.path).path
            post = _STATUS_POST.match(path)
            if post and rec.method == "POST":
                return self._create(rec, *(unquote(g) for g in post.groups()))
            get = _COMMIT_GET.match(path)
            if get and rec.method == "GET":
                owner, repo, ref, kind = (unquote(g) for g in get.groups())
                return self._read(owner, repo, ref, kind)
            return 404, {}, {"message": "Not Found", "documentation_url": _DOCS}

    def _create(
        self, rec: Recorded, owner: str, repo: str, sha: str
    ) -> tuple[int, dict[str, str], Any]:
        problems, errors = self._validate(rec, sha)
        if problems:
            self.violations.append(Violation(rec, problems))
            if rec.body is _UNPARSABLE:
                return 400, {}, {"message": "Problems parsing JSON", "documentation_url": _DOCS}
            if not _SHA.match(sha):
                return 422, {}, {"message": "sha must be a 40 character SHA1"}
            return (
                422,
                {},
                {
                    "message": "Validation Failed",
                    "errors": errors,
                    "documentation_url": _DOCS,
                },
            )
        if sha.lower() in self._missing:
            return (
                422,
                {},
                {"message": f"No commit found for SHA: {sha}", "documentation_url": _DOCS},
            )
        body: dict[str, Any] = rec.body
        status_id = self._next_id
        self._next_id += 1
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        location = f"{self.url}/repos/{owner}/{repo}/statuses/{sha}"
        response = {
            "url": location,
            "avatar_url": "https://github.com/images/error/hubot_happy.gif",
            "id": status_id,
            "node_id": f"SC_fake{status_id}",
            "state": body["state"],
            "description": body.get("description"),
            "target_url": body.get("target_url"),
            "context": body.get("context", "default"),
            "created_at": stamp,
            "updated_at": stamp,
            "creator": {"login": "wercker-bot", "id": 1, "type": "Bot", "site_admin": False},
        }
        self._stored.append(
            _Stored(f"{owner}/{repo}".lower(), sha.lower(), copy.deepcopy(body), response)
        )
        return 201, {"Location": location}, response

    def _validate(self, rec: Recorded, sha: str) -> tuple[list[str], list[dict[str, str]]]:
        problems: list[str] = []
        errors: list[dict[str, str]] = []
        if not _SHA.match(sha):
            problems.append(f"path sha {sha!r} is not a 40-character hex SHA")
        content_type = rec.headers.get("content-type", "")
        if "json" not in content_type:
            problems.append(f"Content-Type {content_type!r} is not JSON")
        if rec.body is _UNPARSABLE:
            problems.append("body is not JSON")
            return problems, errors
        for err in sorted(self._validator.iter_errors(rec.body), key=lambda e: list(e.path)):
            where = "/".join(str(p) for p in err.path) or "body"
            problems.append(f"{where}: {err.message} (schema: {self.schema_source})")
            field_name = str(err.path[0]) if err.path else "body"
            code = "missing_field" if err.validator == "required" else "invalid"
            errors.append({"resource": "Status", "field": field_name, "code": code})
        if isinstance(rec.body, dict):
            description = rec.body.get("description")
            if isinstance(description, str) and utf16_len(description) > 140:
                problems.append(f"description is {utf16_len(description)} characters (max 140)")
                errors.append(
                    {
                        "resource": "Status",
                        "code": "custom",
                        "field": "description",
                        "message": "description is too long (maximum is 140 characters)",
                    }
                )
        return problems, errors

    def _read(self, owner: str, repo: str, ref: str, kind: str) -> tuple[int, dict[str, str], Any]:
        stored = self._matching(f"{owner}/{repo}", ref)
        newest_first = [s.response for s in reversed(stored)]
        if kind == "statuses":
            return 200, {}, newest_first
        latest: dict[str, dict[str, Any]] = {}
        for response in newest_first:
            latest.setdefault(str(response["context"]).lower(), response)
        states = [r["state"] for r in latest.values()]
        if any(s in ("error", "failure") for s in states):
            combined = "failure"
        elif not states or "pending" in states:
            combined = "pending"
        else:
            combined = "success"
        base = f"{self.url}/repos/{owner}/{repo}"
        return (
            200,
            {},
            {
                "state": combined,
                "statuses": list(latest.values()),
                "sha": ref,
                "total_count": len(latest),
                "repository": {"full_name": f"{owner}/{repo}", "name": repo},
                "commit_url": f"{base}/commits/{ref}",
                "url": f"{base}/commits/{ref}/status",
            },
        )


_UNPARSABLE: Any = object()


def _has_token(headers: dict[str, str], token: str) -> bool:
    value = headers.get("authorization", "")
    scheme, _, given = value.partition(" ")
    return scheme.lower() in ("bearer", "token") and hmac.compare_digest(given, token)


class _Handler(BaseHTTPRequestHandler):
    fake: GitHubFake
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # keep pytest output clean
        pass

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        body: Any = None
        if raw:
            try:
                body = json.loads(raw)
            except (ValueError, UnicodeDecodeError):
                body = _UNPARSABLE
        elif self.command == "POST":
            body = _UNPARSABLE
        headers = {k.lower(): v for k, v in self.headers.items()}
        rec = Recorded(self.command, self.path, headers, body, raw=raw)
        status, extra, payload = self.fake.handle(rec)
        rec.status = status
        if status == 0:
            self.close_connection = True
            return
        data = json.dumps(payload).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-GitHub-Media-Type", "github.v3; format=json")
        for key, value in extra.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    do_GET = _serve
    do_POST = _serve
    do_PATCH = _serve
    do_PUT = _serve
    do_DELETE = _serve


@pytest.fixture
def github_fake() -> Iterator[GitHubFake]:
    fake = GitHubFake().start()
    try:
        yield fake
    finally:
        fake.stop()


# --------------------------------------------------------------------------- webhooks


def sign(secret: str, body: bytes) -> str:
    """The ``X-Hub-Signature-256`` header value GitHub would send with ``body``."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def form_body(payload: dict[str, Any]) -> bytes:
    """The ``application/x-www-form-urlencoded`` body of a form-type hook."""
    return urlencode({"payload": json.dumps(payload)}).encode("ascii")


def webhook_headers(
    body: bytes,
    secret: str | None,
    event: str = "push",
    delivery: str | None = None,
    hook_id: str = "1",
    content_type: str = "application/json",
) -> dict[str, str]:
    """The headers GitHub sends with ``body`` (no signature when ``secret`` is None)."""
    headers = {
        "Content-Type": content_type,
        "User-Agent": "GitHub-Hookshot/044aadd",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
        "X-GitHub-Hook-ID": hook_id,
        "X-GitHub-Hook-Installation-Target-Type": "repository",
        "X-GitHub-Hook-Installation-Target-ID": "1",
    }
    if secret is not None:
        headers["X-Hub-Signature-256"] = sign(secret, body)
    return headers


def _minimal_push() -> dict[str, Any]:
    """The documented push fields a CI bot reads (github-facts §2), for a fresh clone."""
    return {
        "ref": "refs/heads/master",
        "before": ZERO_SHA,
        "after": ZERO_SHA,
        "created": True,
        "deleted": False,
        "forced": False,
        "base_ref": None,
        "compare": "",
        "commits": [{"id": ZERO_SHA, "message": "Initial commit", "distinct": True}],
        "head_commit": {"id": ZERO_SHA, "message": "Initial commit"},
        "repository": {
            "name": "Hello-World",
            "full_name": "Codertocat/Hello-World",
            "private": False,
            "owner": {"name": "Codertocat", "login": "Codertocat"},
            "html_url": "https://github.com/Codertocat/Hello-World",
            "clone_url": "https://github.com/Codertocat/Hello-World.git",
            "ssh_url": "git@github.com:Codertocat/Hello-World.git",
            "default_branch": "master",
        },
        "pusher": {"name": "Codertocat", "email": "codertocat@example.com"},
        "sender": {"login": "Codertocat", "id": 21031067, "type": "User"},
    }


def _example_push() -> dict[str, Any]:
    if PUSH_EXAMPLE.exists():
        data: dict[str, Any] = json.loads(PUSH_EXAMPLE.read_text(encoding="utf-8"))
        return data
    return _minimal_push()


def push_payload(
    repo_full_name: str,
    ref: str,
    sha: str,
    *,
    before: str | None = None,
    message: str = "Initial commit",
    private: bool = False,
    deleted: bool = False,
    tag_object: str | None = None,
    pusher: str = "Codertocat",
) -> dict[str, Any]:
    """A push delivery for ``repo_full_name``/``ref`` at commit ``sha``, derived from GitHub's
    ``with-new-branch`` example (see the module docstring)."""
    payload = _example_push()
    owner, _, name = repo_full_name.partition("/")
    before = before or ZERO_SHA
    after = tag_object or sha
    payload["ref"] = ref
    payload["before"] = before
    payload["after"] = ZERO_SHA if deleted else after
    payload["created"] = before == ZERO_SHA and not deleted
    payload["deleted"] = deleted
    repo = payload["repository"]
    html_url = f"https://github.com/{repo_full_name}"
    repo.update(
        name=name,
        full_name=repo_full_name,
        private=private,
        html_url=html_url,
        url=html_url,
        clone_url=f"{html_url}.git",
        git_url=f"git://github.com/{repo_full_name}.git",
        ssh_url=f"git@github.com:{repo_full_name}.git",
    )
    if isinstance(repo.get("owner"), dict):
        repo["owner"].update(name=owner, login=owner)
    payload["pusher"] = {"name": pusher, "email": f"{pusher}@users.noreply.github.com"}
    payload["compare"] = f"{html_url}/commit/{sha}"
    if deleted:
        payload["head_commit"] = None
        payload["commits"] = []
        return payload
    head = payload.get("head_commit") or {}
    head.update(id=sha, tree_id=head.get("tree_id", ZERO_SHA), message=message)
    head["url"] = f"{html_url}/commit/{sha}"
    payload["head_commit"] = head
    payload["commits"] = [copy.deepcopy(head)]
    return payload


def example_path(kind: str, name: str) -> Path:
    """``../shared/github/payloads/<kind>/<name>`` (may not exist in a fresh clone)."""
    return GITHUB_DATA / "payloads" / kind / name
