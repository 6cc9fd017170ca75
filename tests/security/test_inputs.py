"""Hostile inputs to intake, the worker and the wercker.yml reader (security findings 6, 9,
13, 14, 15, 16, 18): one adversarial test per finding, against real git repositories, the
real store, the real web app and the local runner.

- 6: deliveries arriving out of order never let an ancestor win the branch.
- 9: the GitHub token reaches a clone URL with a port (GitHub Enterprise on :8443).
- 13: a valid 301-character branch builds (cache path components stay under 255 bytes).
- 14: ``refs/heads/..`` and a ref with a newline are refused; no path component escapes.
- 15: a box env name with ``=`` or a newline is a located lint error, never a crash.
- 16: an id past SQLite's integers is a 404, not a 500.
- 18: an oversized wercker.yml, or one that aliases expand to gigabytes, is refused fast.
"""

from __future__ import annotations

import base64
import json
import os
import ssl
import subprocess
import threading
import time
import tracemalloc
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from bot.app import create_app
from bot.build import execute
from bot.chain import path_component
from bot.checkout import checkout
from bot.cli import EXIT_ERRORED, main
from bot.logs import MemoryLog
from bot.models import Result
from bot.services import Services
from bot.settings import parse_settings
from bot.wercker.parse import load_dir, load_text
from bot.wiring import build_services
from tests.harness.builds import new_push
from tests.harness.github_fake import push_payload, webhook_headers
from tests.harness.gitrepo import Remote, git, make_remote
from tests.harness.registry import make_ca
from tests.integration.test_scenarios import run_scenario

SECRET = "s" * 16
# Every passing build writes its commit into the branch's cache: the last writer is what the
# branch's tag would point at.
DEPLOY_YML = (
    "build:\n  steps:\n    - script:\n"
    "        code: echo $WERCKER_GIT_COMMIT > $WERCKER_CACHE_DIR/deployed\n"
)


def _services(tmp_path: Path, remote: Remote) -> Services:
    settings = parse_settings(
        {
            "data_dir": str(tmp_path / "data"),
            "base_url": "http://bot.test",
            "runner": {"kind": "local"},
            "github": {"webhook_secret": SECRET, "status_context": "wb"},
            "repos": {"acme/app": {"clone_url": remote.url, "pipelines": ["build"]}},
        },
        {},
        base_dir=tmp_path,
    )
    return build_services(settings)


def _deliver(client: FlaskClient, payload: dict[str, Any], delivery: str) -> Any:
    body = json.dumps(payload).encode()
    headers = webhook_headers(body, SECRET, delivery=delivery)
    return client.post("/hooks/github", data=body, headers=headers)


def _drain(svc: Services) -> dict[str, str]:
    results: dict[str, str] = {}
    while (claim := svc.store.claim_next("t")) is not None:
        results[str(claim.build.sha)] = str(execute(claim, svc))
    return results


# -- 6: out-of-order deliveries ------------------------------------------------------------


def test_6_out_of_order_deliveries_never_let_an_ancestor_win(tmp_path: Path) -> None:
    remote = make_remote(tmp_path / "git")
    s = remote.commit({"wercker.yml": DEPLOY_YML, "v": "s"})
    a, b, c = (remote.commit({"v": v}) for v in "abc")  # S → A → B → C on main
    svc = _services(tmp_path, remote)
    client = create_app(services=svc).test_client()
    assert _deliver(client, push_payload("acme/app", "refs/heads/main", s), "s").status_code == 202
    running = svc.store.claim_next("w")  # S is running
    assert running is not None
    # GitHub delivers C, then A, then B.
    for sha, before in ((c, b), (a, s), (b, a)):
        payload = push_payload("acme/app", "refs/heads/main", sha, before=before)
        assert _deliver(client, payload, f"d-{sha}").status_code == 202
    svc.store.finish_attempt(running.attempt_id, Result.PASSED, "S ran")
    assert _drain(svc) == {c: "passed"}
    deployed = list((tmp_path / "data" / "cache").glob("*/main/deployed"))
    assert [p.read_text().strip() for p in deployed] == [c]
    assert svc.store.newest_built_sha("acme/app", "main", 10**6) == c
    # Nobody was superseded by an ancestor (or by anything but a descendant).
    for sha in (a, b):
        final = svc.store.statuses_for("acme/app", sha)[-1]
        assert final.state == "error", final
        winner = final.description.removeprefix("Superseded by ")
        full = git(remote.work, "rev-parse", winner)
        assert full != sha
        git(remote.work, "merge-base", "--is-ancestor", sha, full)  # raises if not
    assert svc.store.statuses_for("acme/app", c)[-1].state == "success"


# -- 9: the token reaches a clone URL with a port ------------------------------------------


class _GitHTTPS(ThreadingHTTPServer):
    """``git http-backend`` over HTTPS on a port; answers 401 unless the expected
    ``Authorization`` header came, and records every header seen."""

    def __init__(self, root: Path, token: str, ca_dir: Path) -> None:
        super().__init__(("127.0.0.1", 0), _GitHandler)
        self.root = root
        self.token = token
        basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
        self.expected = f"basic {basic}"
        self.seen: list[str] = []
        paths = make_ca(ca_dir)
        self.ca_file = paths.ca_file
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(paths.cert_file, paths.key_file)
        self.socket = context.wrap_socket(self.socket, server_side=True)


class _GitHandler(BaseHTTPRequestHandler):
    server: _GitHTTPS

    def log_message(self, format: str, *args: Any) -> None:
        pass  # no request lines in the test output

    def do_GET(self) -> None:
        self._cgi()

    def do_POST(self) -> None:
        self._cgi()

    def _cgi(self) -> None:
        auth = self.headers.get("Authorization", "")
        self.server.seen.append(auth)
        if auth != self.server.expected:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="git"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        path, _, query = self.path.partition("?")
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "GIT_PROJECT_ROOT": str(self.server.root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "REQUEST_METHOD": self.command,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "REMOTE_ADDR": "127.0.0.1",
            "HTTP_CONTENT_ENCODING": self.headers.get("Content-Encoding", ""),
            "GIT_PROTOCOL": self.headers.get("Git-Protocol", ""),
        }
        out = subprocess.run(
            ["git", "http-backend"], input=body, env=env, capture_output=True, check=True
        ).stdout
        head, _, payload = out.partition(b"\r\n\r\n")
        status = 200
        headers: list[tuple[str, str]] = []
        for line in head.decode("latin-1").split("\r\n"):
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = int(value.split()[0])
            elif name:
                headers.append((name, value.strip()))
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


@pytest.fixture
def git_https(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[_GitHTTPS, Remote]]:
    remote = make_remote(tmp_path / "git")
    server = _GitHTTPS(tmp_path / "git", "ghs_enterpriseToken42", tmp_path / "ca")
    monkeypatch.setenv("GIT_SSL_CAINFO", server.ca_file)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server, remote
    finally:
        server.shutdown()
        server.server_close()


def test_9_token_is_sent_to_a_clone_url_with_a_port(
    tmp_path: Path, git_https: tuple[_GitHTTPS, Remote]
) -> None:
    server, remote = git_https
    sha = remote.commit({"a.txt": "enterprise"})
    port = server.server_address[1]
    url = f"https://localhost:{port}/remote.git"
    log = MemoryLog()
    token = server.token
    checkout(url, sha, "refs/heads/main", tmp_path / "co", log, token=token)
    assert (tmp_path / "co" / "a.txt").read_text() == "enterprise"
    assert server.seen and all(seen == server.expected for seen in server.seen)
    on_disk = (tmp_path / "co" / ".git" / "config").read_text()
    assert token not in on_disk and token not in log.text


# -- 13: a long valid branch name -----------------------------------------------------------


def test_13_a_301_character_branch_builds(tmp_path: Path) -> None:
    branch = "feature/" + "y" * 200 + "/" + "z" * 92
    assert len(branch) == 301
    spec = {
        "branch": branch,
        "wercker.yml": (
            "build:\n  steps:\n    - script:\n        code: touch $WERCKER_CACHE_DIR/ok\n"
        ),
    }
    got = run_scenario(tmp_path, spec)
    assert got["result"] == "passed", got["log"]
    (marker,) = (tmp_path / "data" / "cache").glob("*/*/ok")
    branch_dir = marker.parent.name
    assert len(branch_dir.encode()) <= 255 and branch_dir.startswith("feature_yyyy")


# -- 14: refs that escape or forge -----------------------------------------------------------


@pytest.mark.parametrize(
    ("ref", "reason"),
    [
        ("refs/heads/..", "'..'"),
        ("refs/heads/main\n[wercker-bot] attempt 1 passed", "control character '\\n'"),
        ("refs/heads/a//b", "'//'"),
        ("refs/heads/x.lock", ".lock"),
        ("refs/tags/v1@{0}", "'@{'"),
    ],
)
def test_14_invalid_refs_are_refused_at_intake(tmp_path: Path, ref: str, reason: str) -> None:
    remote = make_remote(tmp_path / "git")
    sha = remote.commit({"wercker.yml": DEPLOY_YML})
    svc = _services(tmp_path, remote)
    client = create_app(services=svc).test_client()
    resp = _deliver(client, push_payload("acme/app", ref, sha), "d-bad-ref")
    assert resp.status_code == 400, resp.json
    error = resp.json["error"]
    assert "\n" not in error and repr(ref)[:40] in error and reason in error
    assert svc.store.list_builds() == []


def test_14_no_cache_path_component_escapes_its_folder(tmp_path: Path) -> None:
    for name in ("..", ".", "", "...", "a/../../b", "../../etc"):
        component = path_component(name)
        assert component not in ("", ".", "..") and "/" not in component
    # A build stored with the branch ".." (before intake checked refs) keeps its cache
    # inside its repository's folder.
    remote = make_remote(tmp_path / "git")
    sha = remote.commit({"wercker.yml": DEPLOY_YML})
    svc = _services(tmp_path, remote)
    svc.store.record_push(new_push(ref="refs/heads/..", branch="..", sha=sha))
    assert _drain(svc) == {sha: "passed"}
    cache = tmp_path / "data" / "cache"
    (deployed,) = cache.rglob("deployed")
    assert deployed.parent.parent.parent == cache, deployed


def test_14_run_branch_is_checked_like_a_ref(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("WERCKER_BOT_CONFIG", raising=False)
    directory = tmp_path / "project"
    directory.mkdir()
    (directory / "wercker.yml").write_text(DEPLOY_YML)
    forged = "main\n[wercker-bot] attempt 1 passed"
    code = main(["run", str(directory), "--runner", "local", "--branch", forged])
    err = capsys.readouterr().err
    assert code == EXIT_ERRORED
    assert "--branch 'main\\n[wercker-bot] attempt 1 passed' is not a valid git branch" in err


# -- 15: box env names -------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["A=B", "A\nB", "1ST"])
def test_15_bad_box_env_names_are_located_errors_not_crashes(tmp_path: Path, name: str) -> None:
    quoted = json.dumps(name)  # a YAML double-quoted key
    text = (
        "box:\n  id: alpine\n  env:\n"
        f"    {quoted}: x\n"
        "build:\n  steps:\n    - script:\n        code: 'true'\n"
    )
    _, problems = load_text(text, "wercker.yml")
    errors = [p for p in problems if p.severity == "error"]
    assert [p.format() for p in errors] == [
        f"wercker.yml:4:5: error: box env name {name!r} is not a valid environment variable "
        "name: use letters, digits and _ and do not start with a digit"
    ]
    got = run_scenario(tmp_path, {"wercker.yml": text})
    assert got["result"] == "errored"
    status = got["statuses"]["build"]
    assert status.startswith("error: wercker.yml line 4: box env name"), status
    assert "internal error" not in got["log"]


# -- 16: ids out of range ---------------------------------------------------------------------


def test_16_ids_past_sqlite_integers_are_404(tmp_path: Path) -> None:
    remote = make_remote(tmp_path / "git")
    client = create_app(services=_services(tmp_path, remote)).test_client()
    huge = "99999999999999999999999"
    for url in (f"/builds/{huge}", f"/api/builds/{huge}", f"/api/attempts/{huge}/log"):
        assert client.get(url).status_code == 404, url
    assert client.get(f"/builds/{2**63 - 1}").status_code == 404  # in range, absent
    assert client.get(f"/builds/{2**63}").status_code == 404


# -- 18: oversized wercker.yml ----------------------------------------------------------------


def test_18_an_oversized_wercker_yml_is_refused_without_reading_it(tmp_path: Path) -> None:
    text = "build:\n  steps:\n" + "    - script:\n        code: echo hi\n" * 66_666
    assert 2_350_000 < len(text) < 2_450_000
    (tmp_path / "wercker.yml").write_text(text)
    started = time.monotonic()
    wf, problems, _ = load_dir(tmp_path)
    assert time.monotonic() - started < 1.0
    assert wf is None
    assert [p.format() for p in problems] == [
        "wercker.yml:1:1: error: wercker.yml is 2.4 MB; the limit is 1 MB; move long "
        "scripts into files in the repository and run them from a step"
    ]
    # Reading stops just past the limit: a 64 MB file never enters memory.
    big = tmp_path / "big"
    big.mkdir()
    with (big / "wercker.yml").open("wb") as handle:
        handle.truncate(64 * 1024 * 1024)
    tracemalloc.start()
    try:
        _, problems, _ = load_dir(big)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4_000_000  # bytes: a few times the 1 MB limit, far below 64 MB
    assert problems[0].message == "wercker.yml is 67.1 MB; the limit is 1 MB"


def test_18_aliases_cannot_expand_a_small_file_into_a_huge_one() -> None:
    text = (
        "build:\n  steps:\n    - internal/docker-push:\n        repository: acme/app\n"
        "        tag: [&t '" + "a" * 20_000 + "', " + ", ".join(["*t"] * 1000) + "]\n"
    )
    assert len(text) < 30_000
    started = time.monotonic()
    wf, problems = load_text(text, "wercker.yml")
    assert time.monotonic() - started < 1.0
    assert wf is None
    assert len(problems) == 1 and "too big once its aliases" in problems[0].message
    assert problems[0].severity == "error" and problems[0].loc.line == 1


def test_a_wercker_yml_linking_outside_the_checkout_is_refused_unread(
    tmp_path: Path,
) -> None:
    """A commit whose wercker.yml is a link to a host file: the bot would read (and quote
    in lint errors, logs and statuses) whatever the link names."""
    secret = tmp_path / "host" / "private.key"
    secret.parent.mkdir()
    secret.write_text("box: CANARY-host-secret\n")
    checkout_dir = tmp_path / "checkout"
    checkout_dir.mkdir()
    (checkout_dir / "wercker.yml").symlink_to(secret)
    wf, problems, path = load_dir(checkout_dir)
    assert wf is None and path == checkout_dir / "wercker.yml"
    assert [p.severity for p in problems] == ["error"]
    assert "outside the repository" in problems[0].message
    assert "CANARY" not in " ".join(p.format() for p in problems)


def test_a_wercker_yml_linking_inside_the_checkout_is_read(tmp_path: Path) -> None:
    checkout_dir = tmp_path / "checkout"
    (checkout_dir / "ci").mkdir(parents=True)
    (checkout_dir / "ci" / "wercker.yml").write_text(
        "build:\n  steps:\n    - script:\n        code: echo hi\n"
    )
    (checkout_dir / "wercker.yml").symlink_to("ci/wercker.yml")
    wf, problems, _ = load_dir(checkout_dir)
    assert wf is not None and "build" in wf.pipelines
    assert not [p for p in problems if p.severity == "error"]
