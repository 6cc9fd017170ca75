"""The docker runner stops a running step when its attempt is aborted (a worker restart):
the same kill as a timeout, every process the step started included, reported ``ABORTED``."""

from __future__ import annotations

import threading
import time

from bot.images import ImageRef
from bot.logs import MemoryLog
from bot.runners.base import ABORTED, Abort, Timeouts, Workspace
from bot.runners.docker import DockerRunner
from tests.harness.dockerd import Dockerd


class _Log(MemoryLog):
    """Says when the step has printed ``started``."""

    def __init__(self) -> None:
        super().__init__()
        self.started = threading.Event()

    def output(self, chunk: str) -> None:
        super().output(chunk)
        if "started" in chunk:
            self.started.set()


def test_an_abort_kills_the_step_and_what_it_started_in_the_box(
    runner: DockerRunner, busybox_box: ImageRef, workspace: Workspace, dockerd: Dockerd
) -> None:
    session = runner.open(busybox_box, {}, workspace, None, MemoryLog())
    try:
        abort = Abort()
        log = _Log()

        def restart_when_started() -> None:
            log.started.wait(60)
            abort.set("worker restarted", requeue=True)

        threading.Thread(target=restart_when_started, daemon=True).start()
        started = time.monotonic()
        result = session.run_script(
            # output flowing without pause, and a background child holding the stream
            "sleep 301 & echo started; while :; do echo tick; sleep 0.05; done",
            env={},
            secrets={},
            cwd=session.paths.source,
            timeouts=Timeouts(command=None, no_response=None, abort=abort),
            log=log,
        )
        assert log.started.is_set() and abort.is_set()
        assert result.timed_out == ABORTED, log.text[-500:]
        assert result.exit_code == 124
        assert time.monotonic() - started < 30
        assert session.container_id is not None
        top = dockerd.client().api.top(session.container_id, ps_args="-o pid,args")
        assert not [p for p in top["Processes"] if p[-1] == "sleep 301"], top
    finally:
        session.close()
