"""A hostile repository against a real ``wercker-bot serve``, on both runners.

The bot runs as a user would run it (a subprocess, its token and webhook secret in its
environment, a config with other repositories' secrets and a registry password), builds
from a real git remote, pushes to the real CNCF registry and posts statuses to the GitHub
fake. The pushed ``wercker.yml`` tries every escape of issue 8 at once:

- it reads every process's environment and command line, the config file, the store and
  everything under ``data_dir`` (other repositories' caches), and prints it base64-encoded
  (past the masker);
- it writes to the store;
- it plants symlinks to a canary host file wherever the bot used to write or read helper
  files, and replaces its output directory with a symlink to the canary's directory before
  a scratch push;
- it leaves a background process holding stdout open, and a ``setsid`` one;
- on a second branch, it fails after linking its message file to the canary.

Then nothing of the canary or of the bot's credentials may appear in the log, the API,
the statuses, the pushed image or the store; the canary file is unchanged; the build
finishes without waiting for the background process; and nothing it started is left.
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import io
import json
import os
import re
import secrets
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
from tests.security.conftest import Canary

ROOT = Path(__file__).resolve().parents[2]
WEBHOOK_SECRET = "attack-webhook-secret-4d1f"
TOKEN = "ghs_attackTokenValue0123456789"
OWN_SECRET = "own-repo-secret-7c2e"
OTHER_SECRET = "other-repo-secret-91ab"
REGISTRY_PASSWORD = "registry-password-55e0"
MARKER = "wbattack"
CHATTY_BYTES = 8_000_000
"""What the chatty step prints: four times the bot's log_limit_mb of 2."""

LOOT_STEPS = """\
    - script:
        name: loot
        code: |
          set +e
          {{
            for f in /proc/[0-9]*/environ /proc/[0-9]*/cmdline; do cat "$f"; echo; done
            cat "$CONFIG_PATH"
            find "$DATA_DIR" "$CANARY_DIR" -type f -exec cat {{}} +
          }} 2>/dev/null | base64 | tr -d '\\n' | sed 's/^/LOOT:/'
          echo
          echo "pwned-{marker}" >> "$DB_PATH" 2>/dev/null
          echo "pwned-{marker}" >> "$CANARY_FILE" 2>/dev/null
          true
    - script:
        name: link output
        code: |
          set +e
          rm -rf "$WERCKER_OUTPUT_DIR" 2>/dev/null
          ln -s "$CANARY_DIR" "$WERCKER_OUTPUT_DIR" 2>/dev/null
          true
    - script:
        name: split secret
        code: |
          first=$(printf '%s' "$OWN" | cut -c1-9)
          rest=$(printf '%s' "$OWN" | cut -c10-)
          printf 'halves: %s' "$first"
          sleep 1
          printf '%s\\n' "$rest"
    - script:
        name: chatty
        code: |
          yes 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde \\
            | head -c {chatty}
          echo
    - script:
        name: background
        code: |
          sleep {bg} &
          setsid sleep {bg2} &
          echo started
    - internal/docker-scratch-push:
        repository: {registry}/acme/loot
        tag: {tag}
  after-steps:
    - script:
        name: plant links
        code: |
          set +e
          for dir in /pipeline/.wercker-bot "$WERCKER_ROOT/../helper"; do
            mkdir -p "$dir" 2>/dev/null
            for n in 1 2 3 4 5 6 7 8; do
              for name in step-$n.sh env-$n message-$n wrapper.sh; do
                ln -sf "$CANARY_FILE" "$dir/$name" 2>/dev/null
              done
            done
          done
          true
    - script:
        name: after the links
        code: echo "the bot wrote this step through whatever the box planted"
"""

HUGE_STEP = """\
    - script:
        name: padded
        code: |
          echo hi
          {padding}
"""

FAIL_STEPS = """\
    - script:
        name: leak message
        code: |
          set +e
          for dir in /pipeline/.wercker-bot "$WERCKER_ROOT/../helper"; do
            for n in 1 2 3 4; do
              ln -sf "$CANARY_FILE" "$dir/message-$n" 2>/dev/null
              ln -sf "$CANARY_FILE" "$dir/env-$n" 2>/dev/null
            done
          done
          exit 3
"""


def _wercker_yml(box: str, steps: str) -> str:
    return f"box: {box}\nbuild:\n  steps:\n{steps}"


@dataclass
class Bot:
    url: str
    proc: subprocess.Popen[bytes]
    log_path: Path
    config: Path
    data_dir: Path

    def send(self, payload: dict[str, Any], delivery: str) -> requests.Response:
        body = json.dumps(payload).encode()
        return requests.post(
            f"{self.url}/hooks/github",
            data=body,
            headers=webhook_headers(body, WEBHOOK_SECRET, delivery=delivery),
            timeout=10,
        )

    def get(self, path: str) -> requests.Response:
        return requests.get(f"{self.url}{path}", timeout=10)


def _start_bot(
    tmp: Path, github: GitHubFake, clone_url: str, runner: str, canary: Canary, registry: str
) -> Iterator[Bot]:
    port = free_port()
    data_dir = tmp / "data"
    config = tmp / "bot.toml"
    docker_host = os.environ.get("WB_ATTACK_DOCKER_HOST", "")
    runner_table = f'kind = "{runner}"\n' + (
        f'docker_host = "{docker_host}"\n' if runner == "docker" else ""
    )
    config.write_text(
        f"""
data_dir = "{data_dir}"
base_url = "http://127.0.0.1:{port}"
workers = 2
log_limit_mb = 2
[github]
api_url = "{github.url}"
webhook_secret = "${{ATTACK_SECRET}}"
token = "${{ATTACK_TOKEN}}"
[runner]
{runner_table}
[repos."acme/app"]
clone_url = "{clone_url}"
pipelines = ["build"]
[repos."acme/app".env]
CANARY_FILE = "{canary.file}"
CANARY_DIR = "{canary.directory}"
CONFIG_PATH = "{config}"
DATA_DIR = "{data_dir}"
DB_PATH = "{data_dir / "wercker-bot.sqlite3"}"
[repos."acme/app".secrets]
OWN = "{OWN_SECRET}"
[repos."acme/other"]
clone_url = "{clone_url}"
[repos."acme/other".secrets]
OTHER = "{OTHER_SECRET}"
[registries."{registry}"]
insecure = true
password = "{REGISTRY_PASSWORD}"
"""
    )
    # Another repository's cache, with its secret in a file: a build of acme/app must not
    # reach it.
    other_cache = data_dir / "cache" / "acme_other" / "main"
    other_cache.mkdir(parents=True)
    (other_cache / "token.txt").write_text(OTHER_SECRET)
    env = {**os.environ, "ATTACK_SECRET": WEBHOOK_SECRET, "ATTACK_TOKEN": TOKEN}
    # ``-m bot.cli`` from this tree, so the suite exercises the code it sits next to.
    with serve(
        config, port=port, env=env, log_path=tmp / "bot.log", cwd=ROOT, module=True
    ) as served:
        yield Bot(served.url, served.proc, served.log_path, config, data_dir)


@dataclass
class Attack:
    bot: Bot
    github: GitHubFake
    registry: RegistryServer
    canary: Canary
    runner: str
    loot_sha: str
    fail_sha: str
    loot_build: dict[str, Any]
    fail_build: dict[str, Any]
    huge_sha: str
    huge_build: dict[str, Any]
    loot_seconds: float
    background: str


def _wait_done(bot: Bot, build_id: int, timeout: float) -> dict[str, Any]:
    """The build once it finished, or as it stands after ``timeout`` (each test then fails
    for its own reason rather than the whole module erroring)."""
    deadline = time.monotonic() + timeout
    detail: dict[str, Any] = {}
    while time.monotonic() < deadline:
        detail = bot.get(f"/api/builds/{build_id}").json()
        if detail["attempts"] and detail["attempts"][-1]["state"] not in ("queued", "running"):
            return detail
        assert bot.proc.poll() is None, bot.log_path.read_text()[-3000:]
        time.sleep(0.3)
    return detail


@pytest.fixture(
    scope="module", params=["local", pytest.param("docker", marks=pytest.mark.docker)]
)
def attack(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    registry_plain: RegistryServer,
    busybox_image: Callable[[RegistryServer], str],
) -> Iterator[Attack]:
    runner = str(request.param)
    if runner == "docker":
        dockerd = request.getfixturevalue("dockerd")
        os.environ["WB_ATTACK_DOCKER_HOST"] = dockerd.host
    tmp = tmp_path_factory.mktemp(f"attack-{runner}")
    canary_dir = tmp / "host-canary"
    canary_dir.mkdir()
    canary = Canary(canary_dir, canary_dir / "private.key", f"CANARY-{os.urandom(12).hex()}")
    canary.file.write_text(canary.secret)
    github = GitHubFake()
    github.start()
    remote = make_remote(tmp / "git")
    box = busybox_image(registry_plain)
    # Unique sleep lengths: pgrep must find this build's leftovers, not another run's.
    bg = 3000 + secrets.randbelow(900) * 2
    steps = LOOT_STEPS.format(
        marker=MARKER,
        registry=registry_plain.host,
        tag=runner,
        bg=bg,
        bg2=bg + 1,
        chatty=CHATTY_BYTES,
    )
    loot_sha = remote.commit({"wercker.yml": _wercker_yml(box, steps)}, branch="main")
    fail_sha = remote.commit({"wercker.yml": _wercker_yml(box, FAIL_STEPS)}, branch="fail")
    huge = _wercker_yml(box, HUGE_STEP.format(padding="#" * 2_100_000))
    huge_sha = remote.commit({"wercker.yml": huge}, branch="huge")
    try:
        for bot in _start_bot(tmp, github, remote.url, runner, canary, registry_plain.host):
            started = time.monotonic()
            resp = bot.send(push_payload("acme/app", "refs/heads/main", loot_sha), "a-1")
            assert resp.status_code == 202, resp.text
            loot_id = resp.json()["build"]
            resp = bot.send(push_payload("acme/app", "refs/heads/fail", fail_sha), "a-2")
            assert resp.status_code == 202, resp.text
            failed = _wait_done(bot, resp.json()["build"], timeout=60)
            resp = bot.send(push_payload("acme/app", "refs/heads/huge", huge_sha), "a-3")
            assert resp.status_code == 202, resp.text
            huge_build = _wait_done(bot, resp.json()["build"], timeout=60)
            loot = _wait_done(bot, loot_id, timeout=100)
            seconds = time.monotonic() - started
            with contextlib.suppress(AssertionError):
                github.wait_for(
                    lambda: all(
                        s not in ("pending", None)
                        for s in (
                            github.final_states("acme/app", loot_sha).get("wercker-bot/build"),
                            github.final_states("acme/app", fail_sha).get("wercker-bot/build"),
                        )
                    )
                    or None,
                    timeout=30,
                )
            yield Attack(
                bot, github, registry_plain, canary, runner, loot_sha, fail_sha, loot, failed,
                huge_sha, huge_build, seconds,
                f"sleep ({bg}|{bg + 1})$",
            )
    finally:
        github.stop()
        os.environ.pop("WB_ATTACK_DOCKER_HOST", None)


def _forbidden(attack: Attack) -> list[str]:
    """What no build of acme/app may ever get hold of."""
    return [attack.canary.secret, TOKEN, WEBHOOK_SECRET, OTHER_SECRET, REGISTRY_PASSWORD]


def _full_log(attack: Attack, build: dict[str, Any]) -> str:
    """The whole log of every attempt, through whatever bounded API the bot offers."""
    texts = []
    for attempt in build["attempts"]:
        texts.append(str(attempt.get("log", "")))
    raw = attack.bot.get(f"/api/builds/{build['id']}")
    texts.append(raw.text)
    return "\n".join(texts)


def _decoded_loot(text: str) -> str:
    out = []
    for chunk in re.findall(r"LOOT:([A-Za-z0-9+/=]+)", text):
        try:
            out.append(base64.b64decode(chunk + "=" * (-len(chunk) % 4)).decode("latin-1"))
        except ValueError:
            continue
    return "\n".join(out)


def test_the_step_sees_no_credentials_of_the_bot(attack: Attack) -> None:
    text = _full_log(attack, attack.loot_build)
    assert "LOOT:" in text or "loot" in text  # the step ran
    loot = _decoded_loot(text)
    for value in _forbidden(attack):
        assert value not in loot, f"{attack.runner}: a step read {value[:12]}…"
        assert value not in text


def test_the_canary_file_is_untouched(attack: Attack) -> None:
    assert attack.canary.file.read_text() == attack.canary.secret
    assert not attack.canary.file.is_symlink()
    assert sorted(p.name for p in attack.canary.directory.iterdir()) == ["private.key"]


def test_the_store_was_not_written_by_the_step(attack: Attack) -> None:
    db = attack.bot.data_dir / "wercker-bot.sqlite3"
    assert f"pwned-{MARKER}".encode() not in db.read_bytes()


def test_statuses_and_pages_carry_no_secret(attack: Attack) -> None:
    posted = [
        *attack.github.statuses("acme/app", attack.loot_sha),
        *attack.github.statuses("acme/app", attack.fail_sha),
    ]
    assert posted
    for status in posted:
        for value in _forbidden(attack):
            assert value not in json.dumps(status)
    failed_text = json.dumps(attack.fail_build)
    for value in _forbidden(attack):
        assert value not in failed_text
    for path in (f"/builds/{attack.loot_build['id']}", f"/builds/{attack.fail_build['id']}"):
        page = attack.bot.get(path).text
        for value in _forbidden(attack):
            assert value not in page
    assert attack.fail_build["attempts"][-1]["state"] == "failed"


def test_the_pushed_image_holds_no_host_file(attack: Attack) -> None:
    registry = attack.registry
    resp = requests.get(
        f"http://{registry.host}/v2/acme/loot/manifests/{attack.runner}",
        headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
        timeout=10,
    )
    # The push itself must work: a symlinked output dir is taken as empty (docker) or kept
    # as a link (local), never followed.
    assert resp.status_code == 200, (resp.status_code, attack.loot_build["attempts"][-1])
    manifest = resp.json()
    for layer in manifest["layers"]:
        blob = requests.get(
            f"http://{registry.host}/v2/acme/loot/blobs/{layer['digest']}", timeout=30
        ).content
        data = gzip.decompress(blob)
        for value in _forbidden(attack):
            assert value.encode() not in data, f"{attack.runner}: the image holds a host file"
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            names = tar.getnames()
        assert "private.key" not in {Path(n).name for n in names}


def test_background_processes_neither_hang_the_step_nor_outlive_it(attack: Attack) -> None:
    # The step's `sleep 300 &` holds stdout; the build still ends in well under the
    # no-response timeout (5 min).
    state = attack.loot_build["attempts"][-1]["state"]
    assert state not in ("queued", "running"), f"still {state} after {attack.loot_seconds:.0f}s"
    assert attack.loot_seconds < 90, attack.loot_seconds
    left = subprocess.run(["pgrep", "-f", attack.background], capture_output=True, text=True)
    assert left.stdout.strip() == "", f"left running: {left.stdout}"


def _log_pages(attack: Attack, attempt_id: int) -> list[str]:
    """Every page of the incremental log API, in the smallest pages it serves."""
    texts: list[str] = []
    after = 0
    for _ in range(5000):
        resp = attack.bot.get(f"/api/attempts/{attempt_id}/log?after={after}&max_bytes=1024")
        assert resp.status_code == 200, resp.text[:200]
        page = resp.json()
        texts.append(page["text"])
        if not page["more"] or page["cursor"] == after:
            return texts
        after = page["cursor"]
    raise AssertionError("the log API never ended")


def test_a_secret_printed_in_two_halves_is_masked_in_every_api(attack: Attack) -> None:
    attempt = attack.loot_build["attempts"][-1]
    rest = OWN_SECRET[9:]
    pages = _log_pages(attack, int(attempt["id"]))
    assert "halves: ****" in "".join(pages), "the step did not print its halves"
    for text in pages:
        assert OWN_SECRET not in text and rest not in text
    raw = attack.bot.get(
        f"/builds/{attack.loot_build['id']}/attempts/{attempt['number']}/log.txt"
    ).text
    assert "halves: ****" in raw and rest not in raw
    assert rest not in attack.bot.get(f"/builds/{attack.loot_build['id']}").text


def test_a_chatty_step_is_cut_at_the_limit_and_the_build_goes_on(attack: Attack) -> None:
    build_id = attack.loot_build["id"]
    attempt = attack.loot_build["attempts"][-1]
    assert attempt["state"] == "passed", attempt["description"]
    raw = attack.bot.get(f"/builds/{build_id}/attempts/{attempt['number']}/log.txt").content
    assert b"log cut at 2 MB (log_limit_mb)" in raw
    assert len(raw) < 2 * 1024 * 1024 + 128 * 1024, len(raw)
    # The bot's own lines after the cut are still there, the attempt's end included.
    assert b"attempt 1 passed" in raw[raw.index(b"log cut at 2 MB") :]
    # Pages and the API serve a bounded part of it.
    for path in (f"/builds/{build_id}", f"/api/builds/{build_id}"):
        assert len(attack.bot.get(path).content) < 1024 * 1024, path


def test_an_oversized_wercker_yml_is_refused_with_a_clear_error(attack: Attack) -> None:
    attempt = attack.huge_build["attempts"][-1]
    assert attempt["state"] == "errored"
    assert "the limit is 1 MB" in attempt["description"]
    final = attack.github.final_states("acme/app", attack.huge_sha)
    assert final.get("wercker-bot/build") == "error"


@pytest.mark.parametrize(
    "ref", ["refs/heads/..", "refs/heads/x\n[wercker-bot] attempt 1 passed", "refs/heads/a b"]
)
def test_refs_git_would_refuse_are_400(attack: Attack, ref: str) -> None:
    resp = attack.bot.send(push_payload("acme/app", ref, "c" * 40), f"bad-{ref!r}")
    assert resp.status_code == 400, resp.text
    assert "not a valid git ref name" in resp.json()["error"]


def test_ids_past_the_store_range_are_404(attack: Attack) -> None:
    for path in ("/builds/99999999999999999999999", "/api/builds/99999999999999999999999"):
        assert attack.bot.get(path).status_code == 404, path
