"""The whole job, driven for real: ``wercker-bot serve`` as a subprocess, a signed push,
a git remote, the CNCF registry, the GitHub fake; then the image is read back from the
registry and, with a Docker Engine, pulled and run."""

from __future__ import annotations

import gzip
import io
import json
import os
import subprocess
import tarfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.harness.github_fake import GitHubFake, push_payload, webhook_headers
from tests.harness.gitrepo import make_remote
from tests.harness.registry import RegistryServer, free_port
from tests.harness.serve import serve

SECRET = "e2e-webhook-secret"
TOKEN = "ghs_e2eTokenValue123"
BRANCH = "feature/Login_page"
TAG = "feature-Login_page"
V2S2 = "application/vnd.docker.distribution.manifest.v2+json"

WERCKER_YML = """\
box: {box}
build:
  steps:
    - script:
        name: write message
        code: |
          echo "hello from $WERCKER_GIT_BRANCH" > message.txt
          cp message.txt "$WERCKER_OUTPUT_DIR/"
deploy:
  steps:
    - internal/docker-push:
        repository: {registry}/acme/app
        entrypoint: cat
        cmd: /pipeline/source/message.txt
        ports: 8080
        env: GREETING=hello
        volumes: /data
        working-dir: /pipeline/source
        user: "0"
        stopsignal: SIGINT
        labels: team=platform
"""


@dataclass
class Bot:
    url: str
    proc: subprocess.Popen[bytes]
    log_path: Path

    def send(
        self, payload: dict[str, Any], *, delivery: str, secret: str | None = SECRET
    ) -> requests.Response:
        body = json.dumps(payload).encode()
        return requests.post(
            f"{self.url}/hooks/github",
            data=body,
            headers=webhook_headers(body, secret, delivery=delivery),
            timeout=10,
        )

    def build(self, build_id: int) -> dict[str, Any]:
        resp = requests.get(f"{self.url}/api/builds/{build_id}", timeout=10)
        resp.raise_for_status()
        data: dict[str, Any] = resp.json()
        return data


@dataclass
class Flow:
    bot: Bot
    registry: RegistryServer
    sha: str
    build_id: int
    github: GitHubFake


def start_bot(tmp: Path, github: GitHubFake, clone_url: str) -> Iterator[Bot]:
    port = free_port()
    config = tmp / "bot.toml"
    config.write_text(
        f"""
data_dir = "{tmp / "data"}"
base_url = "http://127.0.0.1:{port}"
workers = 2
[github]
api_url = "{github.url}"
webhook_secret = "${{E2E_SECRET}}"
token = "${{E2E_TOKEN}}"
status_context = "wercker-bot"
[runner]
kind = "local"
[repos."acme/app"]
clone_url = "{clone_url}"
"""
    )
    env = {**os.environ, "E2E_SECRET": SECRET, "E2E_TOKEN": TOKEN}
    # The console script the package installs, as a user would run it.
    with serve(config, port=port, env=env, log_path=tmp / "bot.log") as served:
        yield Bot(served.url, served.proc, served.log_path)


@pytest.fixture(scope="module")
def flow(
    tmp_path_factory: pytest.TempPathFactory,
    registry_plain: RegistryServer,
    busybox_image: Callable[[RegistryServer], str],
) -> Iterator[Flow]:
    tmp = tmp_path_factory.mktemp("e2e")
    github = GitHubFake()
    github.start()
    github.require_token(TOKEN)
    remote = make_remote(tmp / "git")
    box = busybox_image(registry_plain)
    sha = remote.commit(
        {"wercker.yml": WERCKER_YML.format(box=box, registry=registry_plain.host)},
        branch=BRANCH,
    )
    try:
        for bot in start_bot(tmp, github, remote.url):
            resp = bot.send(push_payload("acme/app", f"refs/heads/{BRANCH}", sha), delivery="d-1")
            assert resp.status_code == 202, resp.text
            build_id = resp.json()["build"]
            final = _wait_final(github, sha, bot)
            assert final == {"wercker-bot/build": "success", "wercker-bot/deploy": "success"}, (
                final,
                bot.build(build_id),
                bot.log_path.read_text()[-3000:],
            )
            yield Flow(bot, registry_plain, sha, build_id, github)
    finally:
        github.stop()


def _wait_final(github: GitHubFake, sha: str, bot: Bot, timeout: float = 90) -> dict[str, str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        states = github.final_states("acme/app", sha)
        if len(states) == 2 and "pending" not in states.values():
            return states
        assert bot.proc.poll() is None, bot.log_path.read_text()[-3000:]
        time.sleep(0.3)
    raise AssertionError(f"statuses not final: {github.final_states('acme/app', sha)}")


def _get(registry: RegistryServer, path: str, accept: str | None = None) -> requests.Response:
    headers = {"Accept": accept} if accept else {}
    resp = requests.get(f"http://{registry.host}/v2/{path}", headers=headers, timeout=10)
    resp.raise_for_status()
    return resp


def test_statuses_went_pending_then_success_with_links(flow: Flow) -> None:
    posted = flow.github.statuses("acme/app", flow.sha)
    by_context: dict[str, list[str]] = {}
    for status in posted:
        by_context.setdefault(status["context"], []).append(status["state"])
        assert status["target_url"] == f"{flow.bot.url}/builds/{flow.build_id}"
        assert len(status.get("description") or "") <= 140
    for context in ("wercker-bot/build", "wercker-bot/deploy"):
        assert by_context[context][0] == "pending" and by_context[context][-1] == "success"
    deploy = [s for s in posted if s["context"] == "wercker-bot/deploy"][-1]
    assert deploy["description"].startswith(f"Pushed acme/app:{TAG} (sha256:")
    assert flow.github.violations == []


def test_image_in_registry_has_tag_config_and_files(flow: Flow) -> None:
    manifest_resp = _get(flow.registry, f"acme/app/manifests/{TAG}", V2S2)
    manifest = manifest_resp.json()
    assert manifest["mediaType"] == V2S2
    config = _get(flow.registry, f"acme/app/blobs/{manifest['config']['digest']}").json()
    runtime = config["config"]
    assert runtime["Entrypoint"] == ["cat"]
    assert runtime["Cmd"] == ["/pipeline/source/message.txt"]
    assert runtime["ExposedPorts"] == {"8080/tcp": {}}
    assert "GREETING=hello" in runtime["Env"]
    assert runtime["Volumes"] == {"/data": {}}
    assert (runtime["WorkingDir"], runtime["User"], runtime["StopSignal"]) == (
        "/pipeline/source",
        "0",
        "SIGINT",
    )
    assert runtime["Labels"]["team"] == "platform"
    labels = config["config"]["Labels"]
    assert labels["org.opencontainers.image.revision"] == flow.sha
    assert TOKEN not in json.dumps(config) and SECRET not in json.dumps(config)
    layer = _get(flow.registry, f"acme/app/blobs/{manifest['layers'][-1]['digest']}").content
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(layer))) as tar:
        member = tar.extractfile("pipeline/source/message.txt")
        assert member is not None
        assert member.read().decode().strip() == f"hello from {BRANCH}"
    # The box's layers come first: the image runs busybox.
    assert len(manifest["layers"]) >= 2
    detail = flow.bot.build(flow.build_id)
    images = detail["attempts"][-1]["images"]
    assert images[0]["digest"] == manifest_resp.headers["Docker-Content-Digest"]


def test_build_page_shows_pipelines_steps_and_log(flow: Flow) -> None:
    page = requests.get(f"{flow.bot.url}/builds/{flow.build_id}", timeout=10).text
    assert "write message" in page and "internal/docker-push" in page
    assert TOKEN not in page
    detail = flow.bot.build(flow.build_id)
    steps = detail["attempts"][0]["pipelines"][0]["steps"]
    assert steps[0]["exit_code"] == 0 and steps[0]["finished_at"] >= steps[0]["started_at"]
    assert steps[0]["duration_s"] >= 0
    assert "runner: local" in detail["attempts"][0]["log"]


def test_docker_pull_and_run(flow: Flow, dockerd: Any) -> None:
    ref = f"{flow.registry.host}/acme/app:{TAG}"
    host = ["docker", "-H", dockerd.host]
    subprocess.run([*host, "pull", ref], check=True, capture_output=True, timeout=120)
    out = subprocess.run(
        [*host, "run", "--rm", "--network", "none", ref],
        check=True,
        capture_output=True,
        timeout=120,
        text=True,
    )
    assert out.stdout.strip() == f"hello from {BRANCH}"


def test_redelivery_runs_attempt_two(flow: Flow) -> None:
    before = len(flow.github.statuses("acme/app", flow.sha))
    resp = flow.bot.send(push_payload("acme/app", f"refs/heads/{BRANCH}", flow.sha), delivery="d-1")
    assert resp.status_code == 202 and resp.json()["attempt"] == 2
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        attempts = flow.bot.build(flow.build_id)["attempts"]
        if attempts[-1]["state"] not in ("queued", "running"):
            break
        time.sleep(0.3)
    assert [a["state"] for a in attempts] == ["passed", "passed"]
    # Attempt 2 sets both contexts back to pending, then to success again.
    again = flow.github.wait_for(
        lambda: (lambda s: s if [x["state"] for x in s].count("success") == 2 else None)(
            flow.github.statuses("acme/app", flow.sha)[before:]
        ),
        timeout=30,
    )
    assert {x["state"] for x in again} == {"pending", "success"}


def test_unsigned_request_is_401_and_stores_nothing(flow: Flow) -> None:
    count = len(requests.get(f"{flow.bot.url}/api/builds", timeout=10).json()["builds"])
    payload = push_payload("acme/app", "refs/heads/other", "b" * 40)
    resp = flow.bot.send(payload, delivery="d-unsigned", secret=None)
    assert resp.status_code == 401
    assert len(requests.get(f"{flow.bot.url}/api/builds", timeout=10).json()["builds"]) == count
