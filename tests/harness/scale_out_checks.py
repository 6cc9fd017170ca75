"""The scale-out scenario run end to end, and its invariants (issue 11 "Done when").

``run_scenario`` starts a ``Cluster`` (``tests.harness.scale_out``), sends the pushes from
a background thread, and meanwhile ``kill -9``s one worker host while it runs a build and
SIGSTOPs another past the reaper's timeout (resumed once its attempts were reaped). It then
waits until settled (every accepted push's every context final in the GitHub fake, no
attempt queued or running) and returns an ``Outcome``: the acks, the settle time after the
last push, the store's rows and the registry's tag history. ``Outcome.problems()`` lists
what broke each invariant, with the evidence, by name (empty lists when all hold).
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from sqlalchemy import Engine, create_engine, text

from tests.harness.github_fake import GitHubFake
from tests.harness.scale_out import (
    Ack,
    Cluster,
    Push,
    make_repos,
    plan,
    send_pushes,
    signal_host,
    write_config,
)

REVISION = "org.opencontainers.image.revision"
ACCEPT = ", ".join(
    [
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
    ]
)
ATTEMPTS = text(
    "SELECT a.id, a.build_id, a.number, a.state, a.description, a.worker, a.started_at,"
    " a.finished_at, b.repo, b.branch, b.sha FROM attempts a JOIN builds b"
    " ON b.id = a.build_id ORDER BY a.id"
)
IMAGES = text("SELECT attempt_id, repository, tags, created_at FROM images ORDER BY created_at")
OUTBOX = text("SELECT id, repo, sha, context, state, description FROM status_outbox ORDER BY id")
JOBS = text(
    "SELECT id, lock, status FROM procrastinate_jobs WHERE status IN ('todo', 'doing')"
    " ORDER BY id"
)
# A drain job ends a moment after its attempt does: how long it may take to be done.
JOBS_DONE_SECONDS = 15.0


@dataclass
class Options:
    """The scenario's knobs; the defaults are the issue's scenario."""

    pushes: int = 200
    workers: int = 3
    clients: int = 5
    pace: float = 0.35
    """Seconds between two pushes of one client thread (200 pushes take ~15 s)."""
    sleep: float = 0.5
    lost_after: float = 4.0
    reap_every: float = 1.0
    settle_timeout: float = 150.0


@dataclass
class Outcome:
    """What one run saw; ``problems()`` checks it."""

    branches: dict[tuple[str, str], list[Push]]
    acks: list[Ack]
    settle_seconds: float
    attempts: list[Any]
    images: list[Any]
    outbox: list[Any]
    final: dict[tuple[str, str], dict[str, str]]
    """(repo, sha) -> {context: latest state} in the GitHub fake."""
    tags: dict[tuple[str, str], list[str]]
    """(repo, branch) -> the commits the registry's tag named, in the order seen."""
    killed: list[int] = field(default_factory=list)
    """The attempts running on the kill -9ed host when it was killed."""
    paused: list[Any] = field(default_factory=list)
    """The paused host's attempts as the reaper left them (rows, before SIGCONT)."""
    paused_outbox: int = 0
    """Outbox rows for the paused host's commits when it was resumed."""
    paused_host: str = ""
    """The paused host's name (its log is ``<name>.log``)."""
    paused_log: str = ""
    """What the paused host printed, read once everything settled."""
    violations: list[str] = field(default_factory=list)
    """Requests the GitHub fake refused as GitHub would (422s)."""
    jobs: list[Any] = field(default_factory=list)
    """procrastinate jobs still ``todo`` or ``doing`` once settled (and given a moment)."""

    def problems(self) -> dict[str, list[str]]:
        from tests.harness.scale_out_invariants import problems

        return problems(self)


class TagWatcher:
    """Samples every branch's tag in the registry (manifest → config → revision label)
    until stopped; ``seen`` keeps each change, in order."""

    def __init__(self, registry: str, keys: list[tuple[str, str]]) -> None:
        self.base, self.keys = f"http://{registry}/v2", keys
        self.seen: dict[tuple[str, str], list[str]] = {k: [] for k in keys}
        self._revisions: dict[str, str] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)

    def revision(self, repo: str, tag: str) -> str | None:
        resp = requests.get(
            f"{self.base}/{repo}/manifests/{tag}", headers={"Accept": ACCEPT}, timeout=10
        )
        if resp.status_code == 404:
            return None
        resp.raise_for_status()
        config = resp.json()["config"]["digest"]
        if config not in self._revisions:
            blob = requests.get(f"{self.base}/{repo}/blobs/{config}", timeout=10)
            blob.raise_for_status()
            labels = blob.json().get("config", {}).get("Labels") or {}
            self._revisions[config] = str(labels.get(REVISION, "?"))
        return self._revisions[config]

    def sample(self) -> None:
        for repo, branch in self.keys:
            sha = self.revision(repo, branch)
            seen = self.seen[(repo, branch)]
            if sha is not None and (not seen or seen[-1] != sha):
                seen.append(sha)

    def _run(self) -> None:
        while not self._stop.wait(0.4):
            try:
                self.sample()
            except (requests.RequestException, ValueError, KeyError):
                continue  # a busy registry: the next sample sees the tag


def until(check: Callable[[], object], what: str, timeout: float) -> Any:
    """``check()``'s first truthy value, polled; AssertionError naming ``what`` on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:.0f} s: {what}")
        time.sleep(0.1)


def rows(engine: Engine, query: Any) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(query).all())


BUSY = text(
    "SELECT a.id, a.worker FROM attempts a JOIN pipelines p ON p.attempt_id = a.id"
    " JOIN steps s ON s.pipeline_id = p.id"
    " WHERE a.state = 'running' AND s.name = 'work' AND s.state = 'running'"
)


def running_on(engine: Engine, pids: list[int]) -> dict[int, list[int]]:
    """pid -> ids of the attempts that worker process is running its script step of (the
    fence token is ``host:pid:…``): past checkout, so the attempt is neither about to end
    itself superseded nor about to finish before a signal lands."""
    out: dict[int, list[int]] = {}
    for r in rows(engine, BUSY):
        parts = str(r.worker).split(":")
        if len(parts) > 1 and parts[1].isdigit() and int(parts[1]) in pids:
            out.setdefault(int(parts[1]), []).append(int(r.id))
    return out


def _chaos(
    cluster: Cluster, engine: Engine, sent: Callable[[], int], opts: Options, outcome: Outcome
) -> None:
    """kill -9 of a host mid-build, then SIGSTOP of another past ``lost_after``."""
    pids = [w.pid for w in cluster.workers]
    until(lambda: sent() >= opts.pushes // 5, "a fifth of the pushes sent", 120)
    busy = until(lambda: running_on(engine, pids), "a worker running a build", 60)
    victim = next(iter(busy))
    signal_host(victim, signal.SIGKILL)
    outcome.killed = busy[victim]
    cluster.workers[pids.index(victim)].wait(timeout=10)
    others = [p for p in pids if p != victim]
    until(lambda: sent() >= opts.pushes * 2 // 5, "two fifths of the pushes sent", 120)
    busy = until(lambda: running_on(engine, others), "another worker running a build", 60)
    zombie = next(iter(busy))
    outcome.paused_host = f"worker{pids.index(zombie)}"
    signal_host(zombie, signal.SIGSTOP)
    try:
        ids = set(busy[zombie])
        outcome.paused = until(
            lambda: _ended(engine, ids),
            "the paused host's attempts reaped",
            opts.lost_after * 6 + 20,
        )
        time.sleep(opts.reap_every)  # paused for longer than lost_after, and then some
        shas = {str(r.sha) for r in outcome.paused}
        outcome.paused_outbox = sum(1 for r in rows(engine, OUTBOX) if r.sha in shas)
    finally:
        signal_host(zombie, signal.SIGCONT)


def _ended(engine: Engine, ids: set[int]) -> list[Any]:
    """The rows of attempts ``ids`` once none of them is running any more, else []."""
    found = [r for r in rows(engine, ATTEMPTS) if r.id in ids]
    return found if all(r.state != "running" for r in found) else []


def settled(engine: Engine, github: GitHubFake, acks: list[Ack]) -> bool:
    """Every accepted push has a context and all its contexts are final in the fake, and
    no attempt is queued or running in the store."""
    for ack in acks:
        if ack.status == 202:
            states = github.final_states(ack.push.repo, ack.push.sha)
            if not states or "pending" in states.values():
                return False
    with engine.connect() as conn:
        busy = conn.execute(
            text("SELECT count(*) FROM attempts WHERE state IN ('queued', 'running')")
        ).scalar_one()
    return int(busy) == 0


def run_scenario(
    root: Path, store_url: str, registry: str, github: GitHubFake, opts: Options | None = None
) -> Outcome:
    """The whole scenario under ``root`` (repos, configs, logs); see the module docstring."""
    opts = opts or Options()
    urls = make_repos(root / "git", registry, opts.pushes, opts.sleep)
    branches = plan(root / "git")

    def config(name: str, data: str) -> Path:
        return write_config(root / f"{name}.toml", root / data, store_url, github.url, urls,
                            opts.lost_after, opts.reap_every)  # fmt: skip

    configs = [config(f"worker{i}", f"data{i}") for i in range(opts.workers)]
    web = config("web", "data-web")
    engine = create_engine(store_url.replace("postgresql://", "postgresql+psycopg://", 1))
    outcome = Outcome(branches, [], 0.0, [], [], [], {}, {})
    cluster = Cluster(root)
    watcher = TagWatcher(registry, sorted(branches))
    try:
        cluster.start(configs, web)
        watcher.start()
        acks: list[Ack] = []
        sender = threading.Thread(
            target=send_pushes, args=(cluster.port, branches, opts.clients, opts.pace, acks)
        )
        sender.start()
        try:
            _chaos(cluster, engine, lambda: len(acks), opts, outcome)
        finally:
            sender.join()
        outcome.acks = acks
        last = max(a.at for a in acks)
        until(lambda: settled(engine, github, acks), "settled", opts.settle_timeout)
        outcome.settle_seconds = time.monotonic() - last
        watcher.stop()
        watcher.sample()  # the final state, after everything settled
        outcome.tags = watcher.seen
        outcome.attempts = rows(engine, ATTEMPTS)
        outcome.images = rows(engine, IMAGES)
        outcome.outbox = rows(engine, OUTBOX)
        deadline = time.monotonic() + JOBS_DONE_SECONDS
        while (jobs := rows(engine, JOBS)) and time.monotonic() < deadline:
            time.sleep(0.2)
        outcome.jobs = jobs
        outcome.paused_log = cluster.log(outcome.paused_host)
        outcome.violations = [str(v) for v in github.violations]
        outcome.final = {
            (a.push.repo, a.push.sha): github.final_states(a.push.repo, a.push.sha) for a in acks
        }
        return outcome
    finally:
        watcher.stop()
        cluster.stop()
        engine.dispose()
