"""Limits on what a box can make the bot (or the host) hold, on the real private engine:

1. memory: a step printing faster than the build log takes it waits for the log (a bounded
   queue), and a slow log neither kills its box nor loses output, nor holds off a timeout;
2. crash leftovers: box containers of a bot process that died are removed by a running
   bot's recovery; those of live processes and other hosts stay;
3. processes: a box container holds at most ``pids_limit`` processes, on no network;
4. disk: a copy out of the box stops at a size limit and leaves nothing behind.
"""

from __future__ import annotations

import io
import logging
import os
import queue
import re
import secrets
import signal
import socket
import subprocess
import sys
import tarfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

import tests.integration.docker.conftest as docker_fixtures
from bot.errors import InfrastructureError
from bot.images import ImageRef
from bot.logs import MemoryLog
from bot.procs import worker_name
from bot.runners.base import Timeouts, Workspace
from bot.runners.docker import DockerRunner, DockerSession, execs
from bot.runners.docker.archive import ArchiveTooLargeError, extract_stream
from bot.runners.docker.runner import MEMORY_MB, PIDS_LIMIT
from bot.runners.docker.sweep import box_name, box_owner, sweep_boxes
from bot.settings import parse_settings
from bot.wiring import build_services
from bot.worker import WorkerPool
from tests.harness.dockerd import Dockerd

box_registry = docker_fixtures.box_registry
busybox_box = docker_fixtures.busybox_box
runner = docker_fixtures.runner
workspace = docker_fixtures.workspace

NO_LIMITS = Timeouts(command=None, no_response=None)
REPO = Path(__file__).resolve().parents[2]


def _run(session: DockerSession, code: str, log: Any, **kw: Any) -> Any:
    return session.run_script(
        code,
        env=kw.get("env", {}),
        secrets={},
        cwd=session.paths.source,
        timeouts=kw.get("timeouts", NO_LIMITS),
        log=log,
    )


# -- 1: a slow build log ----------------------------------------------------------------------


class SlowLog(MemoryLog):
    """A log whose ``output`` takes a while, as ``StoreLog`` does under backpressure."""

    def __init__(self, delay: float) -> None:
        super().__init__()
        self.delay = delay

    def output(self, chunk: str) -> None:
        time.sleep(self.delay)
        super().output(chunk)


class PeakQueue(queue.Queue[Any]):
    """The exec's output queue, remembering the most chunks it ever held."""

    peak = 0

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        super().put(item, block, timeout)
        PeakQueue.peak = max(PeakQueue.peak, self.qsize())


@pytest.fixture
def peak_queue(monkeypatch: pytest.MonkeyPatch) -> type[PeakQueue]:
    PeakQueue.peak = 0
    fake = SimpleNamespace(Queue=PeakQueue, Empty=queue.Empty, Full=queue.Full)
    monkeypatch.setattr(execs, "queue", fake)
    return PeakQueue


@pytest.mark.docker
def test_a_slow_log_holds_the_step_back_and_gets_all_its_output(
    runner: DockerRunner,
    busybox_box: ImageRef,
    workspace: Workspace,
    peak_queue: type[PeakQueue],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A short grace for a stuck stream: draining the backlog into this log takes longer
    # than that, and must not count as stuck.
    monkeypatch.setattr(execs, "_DRAIN_SECONDS", 1.0)
    lines = 500_000  # ~3.4 MB in ~800 chunks, printed in well under a second
    session = runner.open(busybox_box, {}, workspace, None, MemoryLog())
    try:
        log = SlowLog(0.005)
        started = time.monotonic()
        result = _run(session, f"busybox seq 1 {lines}; echo all printed", log)
        took = time.monotonic() - started
        assert result.exit_code == 0, log.text[-2000:]
        assert peak_queue.peak <= 256, f"{peak_queue.peak} chunks waited in memory"
        text = log.text
        assert "killing the box container" not in text
        assert text.endswith(f"{lines}\nall printed\n"), text[-200:]
        numbers = text.splitlines()[:-1]
        assert len(numbers) == lines and numbers[:2] == ["1", "2"]
        assert took > 2, "the log was not slow: the test proves nothing"
        # The box was not killed: the next step runs in it as it is.
        after = MemoryLog()
        assert _run(session, "echo still here", after).exit_code == 0
        assert "restarting" not in after.text and "still here" in after.text
    finally:
        session.close()


@pytest.mark.docker
@pytest.mark.timeout(90)
def test_a_step_printing_faster_than_the_log_still_times_out(
    runner: DockerRunner, busybox_box: ImageRef, workspace: Workspace
) -> None:
    session = runner.open(busybox_box, {}, workspace, None, MemoryLog())
    try:
        log = SlowLog(0.005)
        started = time.monotonic()
        result = _run(session, "busybox yes", log, timeouts=Timeouts(command=2.0, no_response=None))
        assert result.timed_out == "command-timeout"
        assert time.monotonic() - started < 30
    finally:
        session.close()


# -- 2: box containers of dead processes ------------------------------------------------------

CRASHING_BOT = """
import os, signal, sys, threading, time
from pathlib import Path
from bot.logs import MemoryLog
from bot.images import ImageRef, RegistryAuth
from bot.runners.base import Timeouts, Workspace
from bot.runners.docker import DockerRunner

host, registry, repository, tag, root = sys.argv[1:6]
ws = Workspace.create(Path(root) / "ws", Path(root) / "cache")
box = ImageRef(registry, repository, tag, "auto", RegistryAuth())
session = DockerRunner(host).open(box, {}, ws, None, MemoryLog())
step = threading.Thread(target=session.run_script, args=("sleep 300",), kwargs=dict(
    env={}, secrets={"DEPLOY_KEY": "s3cret-in-the-env"}, cwd=session.paths.source,
    timeouts=Timeouts(None, None), log=MemoryLog()), daemon=True)
step.start()
time.sleep(1.0)
print(session.container_id, flush=True)
os.kill(os.getpid(), signal.SIGKILL)  # no finally, no cleanup
"""


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _docker_settings(tmp_path: Path, docker_host: str, kind: str = "docker") -> Any:
    return parse_settings(
        {
            "data_dir": str(tmp_path / "data"),
            "workers": 0,
            "github": {"webhook_secret": "s"},
            "runner": {"kind": kind, "docker_host": docker_host},
        },
        {},
        base_dir=tmp_path,
    )


def test_box_names_carry_their_owner_on_this_host_only() -> None:
    me = worker_name()
    name = box_name()
    assert re.fullmatch(r"[a-zA-Z0-9][a-zA-Z0-9_.-]+", name)  # a valid container name
    assert name.startswith("wercker-bot-")
    assert box_owner(name) == me
    assert box_owner("/" + name) == me
    assert box_owner(box_name("elsewhere.example:42:abcdef123456")) is None
    assert box_owner(f"wercker-bot-{secrets.token_hex(6)}") is None  # an older bot's box
    assert box_owner(box_name(f"{socket.gethostname()}:42:tok:w0")) == (
        f"{socket.gethostname()}:42:tok"
    )


@pytest.mark.docker
def test_a_running_bot_removes_the_box_of_a_bot_that_was_killed(
    dockerd: Dockerd,
    runner: DockerRunner,
    busybox_box: ImageRef,
    workspace: Workspace,
    tmp_path: Path,
) -> None:
    api = dockerd.client().api
    crashed = subprocess.run(
        [sys.executable, "-c", CRASHING_BOT, dockerd.host, busybox_box.registry,
         busybox_box.repository, busybox_box.reference, str(tmp_path / "crashed")],
        capture_output=True, text=True, timeout=120, cwd=REPO,
    )  # fmt: skip
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    orphan = crashed.stdout.strip()
    assert api.inspect_container(orphan)["State"]["Running"]
    # Its step still runs.
    assert "sleep 300" in repr(api.top(orphan, ps_args="-o pid,args")["Processes"])
    # What its session built is tagged after it, and goes too.
    built = {"reference": f"wercker-bot-build/{orphan[:12]}-*"}
    api.tag(busybox_box_image(api), f"wercker-bot-build/{orphan[:12]}-web", "latest")
    assert api.images(filters=built)

    # Boxes that must stay: this live process's own, another host's, an unowned one. And
    # two more that must go: of an earlier process with this same pid, of a dead pid.
    mine = runner.open(busybox_box, {}, workspace, None, MemoryLog())
    keep = []
    for owner in ("elsewhere.example:1:abcdef123456", None):
        name = box_name(owner) if owner else f"wercker-bot-{secrets.token_hex(6)}"
        keep.append(api.create_container(busybox_box_image(api), ["true"], name=name)["Id"])
    earlier_me = box_name(f"{socket.gethostname()}:{os.getpid()}:earliertoken")
    dead = box_name(f"{socket.gethostname()}:{_dead_pid()}:sometoken")
    gone = [api.create_container(busybox_box_image(api), ["true"], name=n)["Id"]
            for n in (earlier_me, dead)]  # fmt: skip
    try:
        pool = WorkerPool(build_services(_docker_settings(tmp_path, dockerd.host)), 0)
        pool.recover()
        left = {c["Id"] for c in api.containers(all=True)}
        assert orphan not in left
        assert not set(gone) & left
        assert mine.container_id in left and set(keep) <= left
        assert not api.images(filters=built)
        assert _run(mine, "echo alive", MemoryLog()).exit_code == 0
        assert sweep_boxes(api) == []  # nothing more to do
    finally:
        mine.close()
        for container in keep:
            api.remove_container(container, force=True)


def busybox_box_image(api: Any) -> str:
    """Any local image to create idle containers from: the box pulled by the sessions."""
    for image in api.images():
        for tag in image.get("RepoTags") or []:
            if "busybox" in tag:
                return str(tag)
    raise AssertionError("no busybox image on the engine")


def test_recovery_goes_on_when_no_engine_answers(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    nowhere = f"unix://{tmp_path}/no-engine.sock"
    for kind, level in (("docker", logging.WARNING), ("auto", logging.DEBUG)):
        caplog.clear()
        settings = _docker_settings(tmp_path / kind, nowhere, kind)
        pool = WorkerPool(build_services(settings), 0)
        with caplog.at_level(logging.DEBUG, logger="bot.worker"):
            assert pool.recover() == []
        said = [r for r in caplog.records if "not sweeping box containers" in r.getMessage()]
        assert [r.levelno for r in said] == [level], caplog.text
        assert nowhere in said[0].getMessage()
        assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text


def test_recovery_does_not_ask_an_engine_under_the_local_runner(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import bot.runners.docker.sweep as sweep

    def refuse(*_: Any, **__: Any) -> list[str]:
        raise AssertionError("asked an engine")

    monkeypatch.setattr(sweep, "sweep_dead_boxes", refuse)
    settings = _docker_settings(tmp_path, "unix:///nowhere.sock", "local")
    assert WorkerPool(build_services(settings), 0).recover() == []


# -- 3: processes and network -----------------------------------------------------------------


@pytest.mark.docker
def test_a_box_holds_a_bounded_number_of_processes_and_has_no_network(
    dockerd: Dockerd, runner: DockerRunner, busybox_box: ImageRef, workspace: Workspace
) -> None:
    api = dockerd.client().api
    session = runner.open(busybox_box, {}, workspace, None, MemoryLog())
    try:
        host_config = api.inspect_container(session.container_id)["HostConfig"]
        assert host_config["PidsLimit"] == PIDS_LIMIT == 4096
        assert host_config["NetworkMode"] == "none"
        # Memory is bounded too ([runner] memory_mb, 4 GiB by default).
        assert host_config["Memory"] == MEMORY_MB * 1024 * 1024 == 4 << 30
    finally:
        session.close()

    small = DockerRunner(dockerd.host, pids_limit=64)
    session = small.open(busybox_box, {}, workspace, None, MemoryLog())
    try:
        log = MemoryLog()
        # A fork loop in a subshell (it dies at the first failed fork); then only builtins,
        # since the sleeps hold nearly every pid the box has.
        result = _run(
            session,
            "( i=0; while [ $i -lt 200 ]; do sleep 120 & i=$((i+1)); echo $i > /tmp/n; done )"
            " 2>/dev/null || true\n"
            "read n < /tmp/n; echo forked=$n\n"
            "for f in /sys/fs/cgroup/pids/pids.max /sys/fs/cgroup/pids.max; do\n"
            '  if [ -r "$f" ]; then read m < "$f"; echo max=$m; break; fi\n'
            "done",
            log,
        )
        assert result.exit_code == 0, log.text
        forked = int(re.search(r"forked=(\d+)", log.text).group(1))  # type: ignore[union-attr]
        assert 32 <= forked < 64, log.text
        if "max=" in log.text:  # the cgroup file, where the kernel shows it
            assert "max=64" in log.text
        # Every one of them died with the step; the box runs the next one as usual.
        again = MemoryLog()
        assert _run(session, "( sleep 1 & sleep 1 & wait ); echo again", again).exit_code == 0
        assert "again" in again.text
    finally:
        session.close()


# -- 4: disk ----------------------------------------------------------------------------------


@pytest.mark.docker
def test_copying_out_of_the_box_stops_at_the_size_limit_and_keeps_nothing(
    runner: DockerRunner, busybox_box: ImageRef, workspace: Workspace
) -> None:
    log = MemoryLog()
    session = runner.open(busybox_box, {}, workspace, None, log)
    try:
        made = _run(
            session,
            'cd "$OUT"; echo small > a.txt; head -c 3145728 /dev/zero > big.bin',
            log,
            env={"OUT": session.paths.output},
        )
        assert made.exit_code == 0, log.text
        with pytest.raises(InfrastructureError) as refused:
            session.collect(session.paths.output, max_bytes=1 << 20)
        assert str(refused.value).startswith(
            "/pipeline/output holds more than 1 MiB; the limit is 1 MiB"
        )
        assert not list(workspace.root.glob("collect-*")), "a partial copy was left"
        # Under the limit it is copied as usual.
        out = session.collect(session.paths.output, max_bytes=4 << 20)
        assert sorted(p.name for p in out.iterdir()) == ["a.txt", "big.bin"]
        assert (out / "big.bin").stat().st_size == 3 << 20
    finally:
        session.close()


def _tar(*members: tuple[str, int]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        top = tarfile.TarInfo("out")
        top.type, top.mode = tarfile.DIRTYPE, 0o755
        tar.addfile(top)
        for name, size in members:
            info = tarfile.TarInfo(name)
            info.size = size
            tar.addfile(info, io.BytesIO(b"x" * size))
    return buf.getvalue()


def test_the_extractor_stops_at_the_limit_before_writing_past_it(tmp_path: Path) -> None:
    raw = _tar(("out/a", 40_000), ("out/b", 40_000), ("out/c", 40_000))
    root = extract_stream([raw], tmp_path, "out", print, "/pipeline/output", 130_000)
    assert sorted(p.name for p in root.iterdir()) == ["a", "b", "c"]

    dest = tmp_path / "cut"
    dest.mkdir()
    with pytest.raises(ArchiveTooLargeError, match=r"holds more than 64 KiB; the limit is 64 KiB"):
        extract_stream([raw], dest, "out", print, "/pipeline/output", 64 << 10)
    assert list(dest.iterdir()) == []  # the partial copy is gone

    # A member that declares more than the limit is refused before any of it is read:
    # here the stream ends right after its header.
    top = tarfile.TarInfo("out")
    top.type, top.mode = tarfile.DIRTYPE, 0o755
    huge = tarfile.TarInfo("out/huge")
    huge.size = 1 << 40
    headers = [info.tobuf(tarfile.PAX_FORMAT) for info in (top, huge)]
    dest = tmp_path / "huge"
    dest.mkdir()
    with pytest.raises(ArchiveTooLargeError):
        extract_stream(headers, dest, "out", print, "/pipeline/output", 1 << 20)
    assert list(dest.iterdir()) == []
