"""What a crashed process leaves on disk is swept by the processes still running (finding 17).

A process that dies mid-build leaves its attempt ``running`` in the store, its workspace
(``data_dir/work/attempt-N``: the checkout and everything the build wrote) and the layer it
was compressing (``blob-cache/tmp/<host:pid:token>/layer-*.tar.gz``). A live worker must
finish the attempt and remove both within its recovery period, without a restart; a dead
process that its parent has not reaped yet (a zombie) is dead at once.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bot.models import Result
from bot.procs import _pid_alive, process_alive, worker_name
from bot.pushers.daemonless import spool_dir, sweep_spool
from bot.settings import Settings, parse_settings
from bot.store.rows import NewPush
from bot.wiring import build_services
from bot.worker import WorkerPool
from tests.harness import builds

# Run by the crashing process: claims the queued attempt, fills a workspace, then dies with
# a layer half compressed into its spool (the real build_layer, stopped mid-stream).
CRASHING_WORKER = """
import os, sys
from pathlib import Path
from bot.pushers.daemonless import spool_dir
from bot.pushers.model import LayerDir
from bot.pushers.registry.layers import build_layer, entries
from bot.procs import worker_name
from bot.reporter import Reporter
from bot.store.sql import SqlStore

db, data, source = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
claim = SqlStore(f"sqlite:///{db}", Reporter("wb", "http://bot")).claim_next(worker_name("w0"))
work = data / "work" / f"attempt-{claim.attempt_id}"
(work / "source").mkdir(parents=True)
(work / "source" / "checkout.bin").write_bytes(os.urandom(1 << 20))
sent = []

def crash_midway(chunk):
    sent.append(len(chunk))
    if sum(sent) > 5 << 19:  # 2.5 of 4 MB: past the first flushes of the 1 MB write buffer
        print(claim.attempt_id, flush=True)
        os._exit(9)  # killed: no finally, no cleanup

build_layer(entries(LayerDir(source, "/")), spool_dir(data / "blob-cache" / "tmp"), crash_midway)
"""


def new_push(sha: str, branch: str = "main") -> NewPush:
    return builds.new_push(
        hook_id="7",
        delivery_id=f"d-{sha}",
        ref=f"refs/heads/{branch}",
        branch=branch,
        sha=sha,
        message="m",
        pusher="p",
        html_url="https://github.com/acme/app",
    )


def settings_for(tmp_path: Path) -> Settings:
    return parse_settings(
        {
            "data_dir": str(tmp_path / "data"),
            "workers": 0,
            "github": {"webhook_secret": "s"},
            "runner": {"kind": "local"},
        },
        {},
        base_dir=tmp_path,
    )


def eventually(check: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"not within {timeout} s: {what}"
        time.sleep(0.05)


@pytest.fixture
def zombie() -> Iterator[int]:
    """The pid of a process that has exited but is not reaped yet (state Z)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    stat = Path(f"/proc/{proc.pid}/stat")
    eventually(lambda: stat.read_text().rsplit(")", 1)[1].split()[0] == "Z", "a zombie")
    try:
        yield proc.pid
    finally:
        proc.wait()


def test_a_live_worker_sweeps_a_crashed_attempts_workspace_and_half_built_layer(
    tmp_path: Path,
) -> None:
    settings = settings_for(tmp_path)
    services = build_services(settings)
    store = services.store
    data = settings.data_dir
    pool = WorkerPool(services, 0, recover_every=0.2)
    pool.start()  # running before the crash: the sweep must not wait for a restart
    try:
        # What a live process holds must survive every sweep: an attempt this process runs,
        # and its own layer spool.
        store.record_push(new_push("b" * 40, branch="live"))
        live = store.claim_next(worker_name("w-live"))
        assert live is not None
        live_work = data / "work" / f"attempt-{live.attempt_id}"
        live_work.mkdir(parents=True)
        own_spool = spool_dir(data / "blob-cache" / "tmp")
        own_spool.mkdir(parents=True)
        (own_spool / "layer-building.tar.gz").write_bytes(b"in progress")

        store.record_push(new_push("a" * 40))
        source = tmp_path / "layer-source"
        source.mkdir()
        for i in range(4):
            (source / f"blob{i}.bin").write_bytes(os.urandom(1 << 20))
        crashed = subprocess.run(
            [sys.executable, "-c", CRASHING_WORKER, str(settings.db_path), str(data), str(source)],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=Path(__file__).resolve().parents[2],
        )
        assert crashed.returncode == 9, crashed.stderr
        attempt = int(crashed.stdout.strip())
        workspace = data / "work" / f"attempt-{attempt}"
        half_built = [
            p for p in (data / "blob-cache" / "tmp").rglob("layer-*") if own_spool not in p.parents
        ]
        assert half_built and all(p.stat().st_size > 0 for p in half_built), half_built

        eventually(
            lambda: not workspace.exists() and not any(p.exists() for p in half_built),
            "the crashed attempt's workspace and half-built layer removed",
            timeout=5,
        )
        assert not half_built[0].parent.exists()  # the dead process's whole spool
        assert attempt not in store.running_attempt_ids()  # finished as errored
        assert live_work.is_dir()
        assert (own_spool / "layer-building.tar.gz").exists()
        store.finish_attempt(live.attempt_id, Result.PASSED, "ok")
        eventually(lambda: not live_work.exists(), "a finished attempt's workspace removed")
    finally:
        pool.stop()


def test_a_zombie_is_dead_at_once(tmp_path: Path, zombie: int) -> None:
    assert _pid_alive(zombie) is False
    host = socket.gethostname()
    assert process_alive(f"{host}:{zombie}:sometoken") is False
    store = builds.open_store(tmp_path / "db.sqlite3")
    store.record_push(new_push("a" * 40))
    claim = store.claim_next(f"{host}:{zombie}:sometoken:w0")
    assert claim is not None
    # Its heartbeat is fresh: only the zombie check can tell it is dead, and it must not
    # wait for the parent to reap it.
    assert store.recover_dead() == [claim.attempt_id]


def test_a_zombies_layer_spool_is_swept_and_live_ones_are_kept(
    tmp_path: Path, zombie: int
) -> None:
    tmp = tmp_path / "tmp"
    host = socket.gethostname()
    dead = tmp / f"{host}:{zombie}:sometoken"
    parent_alive = tmp / f"{host}:{os.getppid()}:sometoken"
    mine = spool_dir(tmp)
    earlier_me = tmp / f"{host}:{os.getpid()}:earliertoken"  # same pid, an earlier process
    other_host = tmp / "elsewhere.example:123:sometoken"
    for spool in (dead, parent_alive, mine, earlier_me, other_host):
        spool.mkdir(parents=True)
        (spool / "layer-x.tar.gz").write_bytes(b"half")
    loose = tmp / "layer-old.tar.gz"  # an earlier version's, not written for an hour
    loose.write_bytes(b"old")
    os.utime(loose, (time.time() - 3600, time.time() - 3600))
    removed = sweep_spool(tmp)
    assert sorted(removed) == sorted([dead, earlier_me, loose])
    assert parent_alive.is_dir() and mine.is_dir() and other_host.is_dir()
    # another host's spool goes once unwritten for a while
    assert sweep_spool(tmp, now=time.time() + 3600) == [other_host]
    assert process_alive(worker_name()) is True
