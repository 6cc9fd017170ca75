"""Helpers for the tests of the built-in step library (``steps/library``).

- ``run_wercker(workdir, wercker_yml, ...)`` runs a ``wercker.yml`` through the real bot,
  ``wercker-bot run <project> --runner local-unsafe --pipeline build`` in a subprocess whose
  current directory is ``workdir`` (so its data dir, cache included, is ``workdir/var``). The
  project is ``workdir/project``, a git repository the call (re)commits; ``env`` values reach
  the steps through the CLI's ``X_<NAME>`` convention. Returns a ``BotRun`` (exit code and
  output). ``cache_dir(workdir)`` is that project's ``WERCKER_CACHE_DIR``.
- ``ToolBin``: a directory to put first on ``PATH`` holding fake executables that record
  their argv (``fake(name, script)``; ``calls(name)``) and, with ``only_host_tools``, a
  minimal set of links to the host's tools, so a tool the test leaves out is absent
  (``without=("bash",)`` leaves bash out too: the bot then runs steps with ``/bin/sh``).
- ``ReleasesFake`` and ``SlackFake``: loopback HTTP fakes of GitHub's releases API (create a
  release, upload an asset) and of a Slack incoming webhook, recording every request.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

REPO_ROOT = Path(__file__).resolve().parents[2]
LIBRARY = REPO_ROOT / "steps" / "library"
BOT = Path(sys.executable).with_name("wercker-bot")

# What the bot, its step wrapper and the library's scripts need from the host in any box.
BASE_TOOLS = (
    "bash", "sh", "env", "cat", "mkdir", "mktemp", "rm", "cp", "mv", "ls", "sed", "grep",
    "tr", "head", "tail", "wc", "find", "touch", "chmod", "date", "od", "dirname", "basename",
    "id", "awk", "sort", "cut", "tee", "printf", "uname", "git", "sleep", "readlink", "ln",
    "true", "false", "xargs", "prlimit", "stat", "umask",
)  # fmt: skip


@dataclass
class BotRun:
    code: int
    output: str

    def line_with(self, text: str) -> str:
        """The first output line containing ``text`` (AssertionError when none)."""
        for line in self.output.splitlines():
            if text in line:
                return line
        raise AssertionError(f"no line with {text!r} in:\n{self.output}")


def write_project(workdir: Path, wercker_yml: str, files: Mapping[str, str | bytes]) -> Path:
    project = workdir / "project"
    project.mkdir(parents=True, exist_ok=True)
    (project / "wercker.yml").write_text(wercker_yml)
    for name, content in files.items():
        path = project / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    git = ["git", "-c", "user.email=t@example.com", "-c", "user.name=t", "-C", str(project)]
    if not (project / ".git").exists():
        subprocess.run([*git, "init", "-q", "-b", "main"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", "test"], check=True)
    return project


def run_wercker(
    workdir: Path,
    wercker_yml: str,
    *,
    files: Mapping[str, str | bytes] | None = None,
    env: dict[str, str] | None = None,
    path: Sequence[Path] = (),
    host_path: bool = True,
    args: Sequence[str] = (),
    timeout: float = 180,
) -> BotRun:
    """Runs the ``build`` pipeline of ``wercker_yml`` (see the module docstring). ``path``
    comes first on ``PATH``; ``host_path=False`` leaves the host's ``PATH`` out; ``args`` are
    more arguments of ``wercker-bot run`` (e.g. ``--config``)."""
    project = write_project(workdir, wercker_yml, files or {})
    parts = [str(p) for p in path]
    if host_path:
        parts.append(os.environ.get("PATH", "/usr/bin:/bin"))
    environ = {"PATH": os.pathsep.join(parts), "LANG": "C.UTF-8", "HOME": str(workdir)}
    environ.update({f"X_{k}": v for k, v in (env or {}).items()})
    argv = [str(BOT), "run", str(project), "--runner", "local-unsafe", "--pipeline", "build", *args]
    proc = subprocess.run(
        argv, cwd=workdir, env=environ, capture_output=True, text=True, timeout=timeout,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    return BotRun(proc.returncode, proc.stdout + proc.stderr)


def cache_dir(workdir: Path, branch: str = "main") -> Path:
    """``WERCKER_CACHE_DIR`` of ``run_wercker``'s project on ``branch``."""
    return workdir / "var" / "cache" / "local_project" / branch


class ToolBin:
    """A directory of executables for ``PATH`` (see the module docstring)."""

    def __init__(
        self,
        directory: Path,
        *,
        only_host_tools: Iterable[str] | None = None,
        without: Iterable[str] = (),
    ) -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.log = self.dir.parent / f"{self.dir.name}-calls.log"
        if only_host_tools is not None:
            left_out = set(without)
            for name in (*BASE_TOOLS, *only_host_tools):
                found = shutil.which(name) if name not in left_out else None
                if found and not (self.dir / name).exists():
                    (self.dir / name).symlink_to(found)

    def fake(self, name: str, script: str = "exit 0") -> Path:
        """An executable ``name`` that records its argv, then runs ``script`` (sh)."""
        target = self.dir / name
        if target.is_symlink() or target.exists():
            target.unlink()
        target.write_text(
            "#!/bin/sh\n"
            f"{{ printf '%s' {name!r}; for a in \"$@\"; do printf '\\037%s' \"$a\"; done;"
            f" printf '\\n'; }} >> '{self.log}'\n"
            f"{script}\n"
        )
        target.chmod(0o755)
        return target

    def wrap(self, name: str, executable: str | Path) -> Path:
        """``name`` runs ``executable`` (a wrapper, not a link: a venv's python needs its path)."""
        target = self.dir / name
        if target.is_symlink() or target.exists():
            target.unlink()
        target.write_text(f"#!/bin/sh\nexec '{executable}' \"$@\"\n")
        target.chmod(0o755)
        return target

    def calls(self, name: str | None = None) -> list[list[str]]:
        """argv (without the name) of each recorded call of ``name`` (all calls when None)."""
        if not self.log.exists():
            return []
        found = []
        for line in self.log.read_text().splitlines():
            tool, *args = line.split("\037")
            if name is None or tool == name:
                found.append(args if name else [tool, *args])
        return found


# -- loopback HTTP fakes -------------------------------------------------------------------


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class _Answer:
    status: int
    body: bytes
    content_type: str = "application/json"


class _FakeServer:
    """A ThreadingHTTPServer on 127.0.0.1 answering POSTs with ``answer``; a context manager."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.scripted: list[_Answer] = []
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                parts = urlsplit(self.path)
                recorded = Recorded(
                    "POST", parts.path, parse_qs(parts.query),
                    {k.lower(): v for k, v in self.headers.items()}, body,
                )  # fmt: skip
                with fake.lock:
                    fake.requests.append(recorded)
                    answer = fake.scripted.pop(0) if fake.scripted else fake.answer(recorded)
                self.send_response(answer.status)
                self.send_header("Content-Type", answer.content_type)
                self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                self.wfile.write(answer.body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def answer(self, request: Recorded) -> _Answer:
        raise NotImplementedError

    def fail_next(self, status: int, body: object, content_type: str = "application/json") -> None:
        data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        self.scripted.append(_Answer(status, data, content_type))

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@dataclass
class _Release:
    id: int
    tag: str
    assets: list[dict[str, object]] = field(default_factory=list)


class ReleasesFake(_FakeServer):
    """GitHub's ``POST /repos/{owner}/{repo}/releases`` (201 with the release, 422 when the
    tag has one already) and ``POST /repos/{owner}/{repo}/releases/{id}/assets?name=`` (201
    with the asset; 404 for an unknown release). Both need ``Authorization: token <token>``
    (401 otherwise). Answers keep GitHub's key order (``url`` ... ``id`` before ``author``)."""

    def __init__(self, token: str) -> None:
        super().__init__()
        self.token = token
        self.releases: dict[int, _Release] = {}

    def answer(self, request: Recorded) -> _Answer:
        if request.headers.get("authorization") != f"token {self.token}":
            return _Answer(401, b'{"message":"Bad credentials"}')
        parts = request.path.strip("/").split("/")
        if len(parts) == 4 and parts[0] == "repos" and parts[3] == "releases":
            return self._create(parts[1], parts[2], request)
        if len(parts) == 6 and parts[3] == "releases" and parts[5] == "assets":
            return self._upload(parts[1], parts[2], int(parts[4]), request)
        return _Answer(404, b'{"message":"Not Found"}')

    def _create(self, owner: str, repo: str, request: Recorded) -> _Answer:
        data = request.json()
        assert isinstance(data, dict)
        if any(r.tag == data.get("tag_name") for r in self.releases.values()):
            exists = {"message": "Validation Failed", "errors": [{"code": "already_exists"}]}
            return _Answer(422, json.dumps(exists).encode())
        release = _Release(4200 + len(self.releases), str(data.get("tag_name")))
        self.releases[release.id] = release
        url = f"{self.url}/repos/{owner}/{repo}/releases/{release.id}"
        body: dict[str, object] = {
            "url": url, "assets_url": f"{url}/assets", "upload_url": f"{url}/assets{{?name,label}}",
            "html_url": url, "id": release.id, "author": {"login": "bot", "id": 1},
            "tag_name": release.tag, "name": data.get("name"), "body": data.get("body"),
            "draft": bool(data.get("draft")), "prerelease": bool(data.get("prerelease")),
        }  # fmt: skip
        return _Answer(201, json.dumps(body, indent=2).encode())

    def _upload(self, owner: str, repo: str, release_id: int, request: Recorded) -> _Answer:
        release = self.releases.get(release_id)
        if release is None:
            return _Answer(404, b'{"message":"Not Found"}')
        name = request.query.get("name", [""])[0]
        asset_id = 9100 + sum(len(r.assets) for r in self.releases.values())
        asset = {
            "url": f"{self.url}/repos/{owner}/{repo}/releases/assets/{asset_id}", "id": asset_id,
            "name": name, "content_type": request.headers.get("content-type"),
            "size": len(request.body), "uploader": {"login": "bot", "id": 1},
        }  # fmt: skip
        release.assets.append(asset)
        return _Answer(201, json.dumps(asset).encode())


class SlackFake(_FakeServer):
    """A Slack incoming webhook at ``url + "/services/T/B/x"``: answers ``ok``. ``payloads()``
    are the JSON documents received (``payload=`` form field, or a JSON body)."""

    def answer(self, request: Recorded) -> _Answer:
        if request.path != "/services/T/B/x":
            return _Answer(404, b"no_service", "text/plain")
        return _Answer(200, b"ok", "text/plain")

    @property
    def webhook(self) -> str:
        return f"{self.url}/services/T/B/x"

    def payloads(self) -> list[dict[str, Any]]:
        found = []
        for request in self.requests:
            if request.headers.get("content-type", "").startswith("application/json"):
                found.append(json.loads(request.body))
            else:
                form = parse_qs(request.body.decode())
                found.append(json.loads(form["payload"][0]))
        return found
