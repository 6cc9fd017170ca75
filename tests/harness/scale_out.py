"""The scale-out scenario's moving parts (issue 11 "Done when"), shared by
``tests/integration/test_scale_out.py`` and ``bench/scale_out.py``.

- ``make_repos``: 3 real git repositories (bare, served over ``file://``), 10 branches in
  all, each branch a linear history of commits made with git plumbing (fast: one process per
  commit), whose ``wercker.yml`` runs a short script step and pushes a scratch image tagged
  with the branch to the given registry (the image's ``org.opencontainers.image.revision``
  label is the commit: that is how a tag is read back as a commit).
- ``Cluster``: ``wercker-bot migrate``, then one ``web`` process under gunicorn with the
  Procfile's command and 3 ``wercker-bot worker`` processes, each with its own config and
  ``data_dir`` (as separate hosts would have) on one PostgreSQL ``[store] url``, each in its
  own session so a whole "host" can be killed or paused.
- ``send_pushes``: signed pushes from client threads; each thread owns some branches and
  sends their pushes in order, each push's ``before`` being the branch's previous commit.

The chaos and the checks live in ``tests.harness.scale_out_checks``.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tests.harness.github_fake import ZERO_SHA, push_payload, webhook_headers
from tests.harness.gitrepo import GIT_ENV
from tests.harness.registry import free_port

ROOT = Path(__file__).resolve().parents[2]
SECRET = "scale-out-webhook-secret"
TOKEN = "ghs_scaleOutToken123"
CONTEXT = "wb"
LAYOUT = {"acme/app0": 4, "acme/app1": 3, "acme/app2": 3}
"""Branches per repository: 10 in all."""

WERCKER_YML = """\
build:
  steps:
    - script:
        name: work
        code: |
          sleep {sleep}
          echo "$WERCKER_GIT_COMMIT" > "$WERCKER_OUTPUT_DIR/commit.txt"
    - internal/docker-scratch-push:
        repository: {registry}/{repo}
        tag: $WERCKER_GIT_BRANCH
"""


@dataclass(frozen=True)
class Push:
    """One push of the plan: ``index`` is its place in its branch's history (0 = oldest)."""

    repo: str
    branch: str
    index: int
    sha: str
    before: str


@dataclass
class Ack:
    """What intake answered to one push."""

    push: Push
    status: int
    build_id: int | None
    at: float


def _git(bare: Path, *args: str, stdin: str | None = None) -> str:
    done = subprocess.run(
        ["git", *args],
        cwd=bare,
        env=GIT_ENV,
        input=stdin,
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout.strip()


def make_repos(root: Path, registry: str, pushes: int, sleep: float = 0.5) -> dict[str, str]:
    """Creates the repositories under ``root`` and returns repo -> clone URL; the plan of
    ``pushes`` commits is ``plan(root)`` (round-robin over the branches)."""
    urls: dict[str, str] = {}
    branches = [(repo, f"b{i}") for repo, n in LAYOUT.items() for i in range(n)]
    per_branch = {key: 0 for key in branches}
    for i in range(pushes):
        per_branch[branches[i % len(branches)]] += 1
    for repo, _ in LAYOUT.items():
        bare = root / repo.replace("/", "_")
        bare.mkdir(parents=True)
        _git(bare, "init", "-q", "--bare")
        yml = WERCKER_YML.format(sleep=sleep, registry=registry, repo=repo)
        blob = _git(bare, "hash-object", "-w", "--stdin", stdin=yml)
        tree = _git(bare, "mktree", stdin=f"100644 blob {blob}\twercker.yml\n")
        base = _git(bare, "commit-tree", tree, "-m", "base")
        _git(bare, "update-ref", "refs/heads/main", base)
        lines = []
        for (r, branch), count in per_branch.items():
            if r != repo:
                continue
            parent = base
            for index in range(count):
                parent = _git(bare, "commit-tree", tree, "-p", parent, "-m", f"{branch} {index}")
                lines.append(f"{branch} {index} {parent}")
            _git(bare, "update-ref", f"refs/heads/{branch}", parent)
        (bare / "plan.txt").write_text("\n".join(lines) + "\n")
        urls[repo] = f"file://{bare}"
    return urls


def plan(root: Path) -> dict[tuple[str, str], list[Push]]:
    """(repo, branch) -> its pushes, oldest first, as ``make_repos`` wrote them."""
    out: dict[tuple[str, str], list[Push]] = {}
    for repo in LAYOUT:
        for line in (root / repo.replace("/", "_") / "plan.txt").read_text().splitlines():
            branch, index, sha = line.split()
            pushes = out.setdefault((repo, branch), [])
            before = pushes[-1].sha if pushes else ZERO_SHA
            pushes.append(Push(repo, branch, int(index), sha, before))
    return out


def post(port: int, body: bytes, event: str, delivery: str) -> tuple[int, dict[str, object]]:
    """One signed delivery on its own connection; the status and the JSON answer."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request("POST", "/hooks/github", body, webhook_headers(body, SECRET, event, delivery))
        resp = conn.getresponse()
        data = resp.read()
    finally:
        conn.close()
    try:
        answer = json.loads(data)
    except ValueError:
        answer = {}
    return resp.status, answer if isinstance(answer, dict) else {}


def send_pushes(
    port: int,
    branches: dict[tuple[str, str], list[Push]],
    clients: int,
    pace: float,
    acks: list[Ack],
) -> None:
    """Sends every push from ``clients`` threads, ``pace`` seconds apart per thread, and
    appends each answer to ``acks`` as it comes (others may watch it grow); thread ``t`` owns
    every ``clients``-th branch, so each branch's pushes arrive in order."""
    keys = sorted(branches)
    lock = threading.Lock()

    def client(mine: list[tuple[str, str]]) -> None:
        queues = [list(branches[k]) for k in mine]
        while any(queues):
            for queue in queues:
                if not queue:
                    continue
                p = queue.pop(0)
                body = json.dumps(
                    push_payload(p.repo, f"refs/heads/{p.branch}", p.sha, before=p.before)
                ).encode()
                status, answer = post(port, body, "push", f"{p.repo}-{p.sha}")
                build = answer.get("build")
                with lock:
                    acks.append(
                        Ack(p, status, build if isinstance(build, int) else None, time.monotonic())
                    )
                time.sleep(pace)

    threads = [threading.Thread(target=client, args=(keys[t::clients],)) for t in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def write_config(
    path: Path,
    data_dir: Path,
    store_url: str,
    github_url: str,
    urls: dict[str, str],
    lost_after: float,
    reap_every: float,
) -> Path:
    """One process's config: its own ``data_dir``, the shared store and everything else."""
    repos = "".join(
        f'\n[repos."{r}"]\nclone_url = "{u}"\npipelines = ["build"]\n' for r, u in urls.items()
    )
    path.write_text(
        f'data_dir = "{data_dir}"\nbase_url = "http://bot.scale-out"\nworkers = 2\n'
        f'[github]\napi_url = "{github_url}"\nwebhook_secret = "{SECRET}"\n'
        f'token = "{TOKEN}"\nstatus_context = "{CONTEXT}"\n'
        '[runner]\nkind = "local"\n'
        f'[store]\nurl = "{store_url}"\nlost_after_seconds = {lost_after}\n'
        f"reap_every_seconds = {reap_every}\n{repos}",
        encoding="utf-8",
    )
    return path


@dataclass
class Cluster:
    """The running processes: ``web`` (gunicorn) on ``port`` and the ``workers``; logs in
    ``root``. ``stop`` ends what is still running (SIGTERM, then SIGKILL to the group)."""

    root: Path
    port: int = 0
    web: subprocess.Popen[bytes] | None = None
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def log(self, name: str) -> str:
        path = self.root / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def worker_log(self, pid: int) -> str:
        index = [w.pid for w in self.workers].index(pid)
        return self.log(f"worker{index}")

    def _spawn(self, argv: list[str], name: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
        with (self.root / f"{name}.log").open("ab") as out:
            return subprocess.Popen(
                argv,
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own group: the whole "host" can be signalled
            )

    def start(self, configs: list[Path], web_config: Path) -> None:
        """Migrates, then starts gunicorn on ``web_config`` and one worker per config."""
        bindir = Path(sys.executable).parent
        env = {k: v for k, v in os.environ.items() if k != "WEB_CONCURRENCY"}
        subprocess.run(
            [str(bindir / "wercker-bot"), "migrate", "--config", str(web_config)],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
            timeout=120,
        )
        self.port = free_port()
        self.web = self._spawn(
            [
                str(bindir / "gunicorn"),
                "--bind",
                f"127.0.0.1:{self.port}",
                "--threads",
                "8",
                "bot.app:create_app()",
            ],
            "web",
            {**env, "WERCKER_BOT_CONFIG": str(web_config)},
        )
        for i, config in enumerate(configs):
            self.workers.append(
                self._spawn(
                    [str(bindir / "wercker-bot"), "worker", "--config", str(config)],
                    f"worker{i}",
                    env,
                )
            )
        self._wait_web()

    def _wait_web(self, timeout: float = 90.0) -> None:
        assert self.web is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.web.poll() is not None:
                raise AssertionError(f"gunicorn exited: {self.log('web')[-3000:]}")
            with contextlib.suppress(OSError):
                if post(self.port, b'{"zen": "hi"}', "ping", "warm")[0] == 200:
                    return
            time.sleep(0.2)
        raise AssertionError(f"gunicorn did not answer within {timeout} s: {self.log('web')}")

    def stop(self) -> None:
        procs = [p for p in [self.web, *self.workers] if p is not None]
        for proc in procs:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGCONT)  # a paused host cannot take SIGTERM
                    os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)


def descendants(pid: int) -> set[int]:
    """Every live descendant of ``pid`` (by the parent links in ``/proc``): a sandbox may
    start its own session, so the process group alone is not the whole host."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            stat = (entry / "stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry.name))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def signal_host(pid: int, sig: int) -> None:
    """``sig`` to the host's process group and to every descendant outside it."""
    rest = descendants(pid)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, sig)
    for child in rest:
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, sig)


@contextlib.contextmanager
def running(root: Path) -> Iterator[Cluster]:
    """A ``Cluster`` stopped at the end of the block, whatever happened in it."""
    cluster = Cluster(root)
    try:
        yield cluster
    finally:
        cluster.stop()
