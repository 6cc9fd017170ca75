"""The docker runner against a real engine: steps in the box, env sync, failures, restart,
timeouts, collect, cleanup."""

from __future__ import annotations

import gc
import os
import socket
import time
from pathlib import Path

import pytest

from bot.errors import InfrastructureError, StepError
from bot.images import ImageRef
from bot.logs import MemoryLog
from bot.runners.base import Timeouts, Workspace
from bot.runners.docker import DockerRunner, DockerSession, engine_available
from bot.runners.docker.session import HELPER_TMPFS
from tests.harness.dockerd import Dockerd
from tests.integration.docker.conftest import Registry

NO_LIMITS = Timeouts(command=None, no_response=None)


def _run(session: DockerSession, code: str, **kw: object):  # type: ignore[no-untyped-def]
    log = MemoryLog()
    result = session.run_script(
        code,
        env=kw.get("env", {}),  # type: ignore[arg-type]
        secrets=kw.get("secrets", {}),  # type: ignore[arg-type]
        cwd=str(kw.get("cwd", session.paths.source)),
        timeouts=kw.get("timeouts", NO_LIMITS),  # type: ignore[arg-type]
        log=log,
    )
    return result, log.text


def _our_containers(dockerd: Dockerd) -> list[str]:
    client = dockerd.client()
    return [c.name for c in client.containers.list(all=True) if c.name.startswith("wercker-bot-")]


def test_engine_available_says_which_engine(dockerd: Dockerd, tmp_path: Path) -> None:
    ok, reason = engine_available(dockerd.host)
    assert ok
    assert reason.startswith("runner: docker (engine 20.") or reason.startswith("runner: docker")
    assert dockerd.host in reason
    missing = f"unix://{tmp_path}/nothing.sock"
    ok, reason = engine_available(missing, timeout=1.0)
    assert not ok
    assert reason.startswith(f"runner: local (no Docker Engine at {missing}")


def test_steps_run_in_the_box_with_source_env_and_exports(
    runner: DockerRunner, busybox_box: ImageRef, workspace: Workspace
) -> None:
    (workspace.source / "hello.txt").write_text("hello from the checkout\n")
    (workspace.cache / "cached.txt").write_text("kept between builds\n")
    log = MemoryLog()
    session = runner.open(busybox_box, {"BOX_VAR": "from-box"}, workspace, None, log)
    try:
        assert session.paths.source == "/pipeline/source"
        result, out = _run(
            session,
            'cat hello.txt; pwd; echo "box=$BOX_VAR step=$STEP_VAR"; cat "$CACHE/cached.txt"\n'
            "echo made > made.txt; echo more > \"$CACHE/new.txt\"\nexport SYNCED='a b'",
            env={"STEP_VAR": "from-step", "CACHE": session.paths.cache},
        )
        assert result.exit_code == 0, out
        assert "hello from the checkout\n/pipeline/source\n" in out
        assert "box=from-box step=from-step" in out
        assert "kept between builds" in out
        assert result.env["SYNCED"] == "a b"
        assert not any(k.startswith("WB_") for k in result.env)
        # The cache is a bind mount: what a step writes there is on the host at once.
        assert (workspace.cache / "new.txt").read_text() == "more\n"
        collected = session.collect(session.paths.source)
        assert sorted(p.name for p in collected.iterdir()) == ["hello.txt", "made.txt"]
        assert collected.is_relative_to(workspace.root)
        assert session.collect(session.paths.output).is_dir()
    finally:
        session.close()


def test_base_path_and_shell_fallback(
    runner: DockerRunner, busybox_box: ImageRef, workspace: Workspace
) -> None:
    (workspace.source / "main.go").write_text("package main\n")
    session = runner.open(busybox_box, {}, workspace, "/go/src/example.com/app/", MemoryLog())
    try:
        assert session.paths.source == "/go/src/example.com/app"
        assert session.shell == "sh"  # busybox has no bash
        result, out = _run(session, "ls; pwd")
        assert result.exit_code == 0
        assert out == "main.go\n/go/src/example.com/app\n"
    finally:
        session.close()


def test_exit_codes_set_e_and_secrets_stay_out_of_the_container_config(
    runner: DockerRunner, busybox_box: ImageRef, workspace: Workspace, dockerd: Dockerd
) -> None:
    session = runner.open(busybox_box, {}, workspace, None, MemoryLog())
    try:
        result, out = _run(session, "echo before; false; echo after")
        assert result.exit_code == 1
        assert "before" in out and "after" not in out
        result, _ = _run(session, "exit 7")
        assert result.exit_code == 7
        result, _ = _run(session, "#!/bin/sh\nfalse\necho no set -e here")
        assert result.exit_code == 0
        result, out = _run(session, 'echo "len=${#TOKEN}"', secrets={"TOKEN": "s3cret-token"})
        assert "len=12" in out
        assert session.container_id is not None
        config = dockerd.client().api.inspect_container(session.container_id)["Config"]
        assert not any("s3cret-token" in item for item in config["Env"] or [])
    finally:
        session.close()


def test_fail_message_file_becomes_the_step_error(
    runner: DockerRunner, busybox_box: ImageRef, workspace: Workspace
) -> None:
    from bot.errors import StepError

    session = runner.open(busybox_box, {}, workspace, None, MemoryLog())
    try:
        with pytest.raises(StepError, match="database is down") as info:
            _run(session, 'fail "database is down"')
        assert info.value.exit_code == 1
    finally:
        session.close()


def test_a_step_that_kills_the_box_then_after_steps_run_in_a_restarted_container(
    runner: DockerRunner, busybox_box: ImageRef, workspace: Workspace
) -> None:
    session = runner.open(busybox_box, {}, workspace, None, MemoryLog())
    try:
        result, _ = _run(session, "echo kept > kept.txt")
        assert result.exit_code == 0
        result, _ = _run(session, "kill 1; sleep 5")
        assert result.exit_code != 0
        log = MemoryLog()
        session.restart(log)
        assert "restarting the box container" in log.text
        result, out = _run(
            session, 'cat kept.txt; echo "result=$WERCKER_RESULT"', env={"WERCKER_RESULT": "failed"}
        )
        assert result.exit_code == 0
        assert out == "kept\nresult=failed\n"
        quiet = MemoryLog()
        session.restart(quiet)  # a live box is left alone
        assert quiet.text == ""
    finally:
        session.close()


def test_timeouts_kill_a_hanging_step_and_say_which(
    runner: DockerRunner, busybox_box: ImageRef, workspace: Workspace, dockerd: Dockerd
) -> None:
    session = runner.open(busybox_box, {}, workspace, None, MemoryLog())
    try:
        started = time.monotonic()
        # A background child holds the output stream open: it must die too.
        result, out = _run(
            session,
            "echo started; sleep 300 & while :; do echo tick; sleep 0.2; done",
            timeouts=Timeouts(command=1.5, no_response=None),
        )
        assert result.timed_out == "command-timeout"
        assert result.exit_code == 124  # as timeout(1) reports it
        assert "started" in out
        assert time.monotonic() - started < 15
        started = time.monotonic()
        result, out = _run(
            session, "echo one; sleep 300", timeouts=Timeouts(command=None, no_response=1.0)
        )
        assert result.timed_out == "no-response-timeout"
        assert time.monotonic() - started < 15
        # Seen from outside: the step's code is an argument of its shell, so a `ps` inside
        # would also match the step that runs it.
        assert session.container_id is not None
        top = dockerd.client().api.top(session.container_id, ps_args="-o pid,args")
        assert not [p for p in top["Processes"] if p[-1] == "sleep 300"], top
    finally:
        session.close()


def test_output_streams_while_the_step_runs(
    runner: DockerRunner, busybox_box: ImageRef, workspace: Workspace
) -> None:
    session = runner.open(busybox_box, {}, workspace, None, MemoryLog())
    seen: list[tuple[float, str]] = []

    class TimedLog(MemoryLog):
        def output(self, chunk: str) -> None:
            seen.append((time.monotonic(), chunk))
            super().output(chunk)

    try:
        started = time.monotonic()
        session.run_script(
            "echo first; sleep 1.5; echo second",
            env={},
            secrets={},
            cwd=session.paths.source,
            timeouts=NO_LIMITS,
            log=TimedLog(),
        )
        first = next(t for t, chunk in seen if "first" in chunk)
        assert first - started < 1.2, "the first line arrived only with the last"
    finally:
        session.close()


def test_close_is_idempotent_and_leaves_no_container(
    runner: DockerRunner, busybox_box: ImageRef, workspace: Workspace, dockerd: Dockerd
) -> None:
    before = set(_our_containers(dockerd))
    session = runner.open(busybox_box, {}, workspace, None, MemoryLog())
    assert len(set(_our_containers(dockerd)) - before) == 1
    session.close()
    session.close()
    assert set(_our_containers(dockerd)) <= before
    with pytest.raises(InfrastructureError):
        _run(session, "true")


def test_no_engine_is_an_infrastructure_error(
    busybox_box: ImageRef, workspace: Workspace, tmp_path: Path
) -> None:
    runner = DockerRunner(f"unix://{tmp_path}/none.sock")
    with pytest.raises(InfrastructureError, match="no Docker Engine"):
        runner.open(busybox_box, {}, workspace, None, MemoryLog())


def test_no_box_is_a_wercker_yml_error_never_a_run_on_the_host(
    runner: DockerRunner, workspace: Workspace
) -> None:
    from bot.errors import WerckerFileError

    with pytest.raises(WerckerFileError, match="names no box"):
        runner.open(None, {}, workspace, None, MemoryLog())


def test_a_box_with_a_non_root_user_owns_its_source(
    runner: DockerRunner, busybox_box: ImageRef, box_registry: Registry, tmp_path: Path
) -> None:
    from bot.pushers.credentials import RegistryCredentials
    from bot.pushers.engine import EngineImage, EnginePusher
    from bot.pushers.model import ImageConfig, Target

    # Make a box whose USER is nobody, through the runner itself.
    maker = runner.open(
        busybox_box, {}, Workspace.create(tmp_path / "a", tmp_path / "c"), None, MemoryLog()
    )
    try:
        target = Target(box_registry.host, "tests/nobody-box", ("v1",))
        EnginePusher(RegistryCredentials({})).push(
            EngineImage(maker.snapshot(), ImageConfig(user="65534")), target, MemoryLog()
        )
    finally:
        maker.close()
    workspace = Workspace.create(tmp_path / "b", tmp_path / "c")
    (workspace.source / "in.txt").write_text("x\n")
    box = ImageRef(box_registry.host, "tests/nobody-box", "v1", "auto")
    session = runner.open(box, {}, workspace, None, MemoryLog())
    try:
        result, out = _run(session, "id -u; echo y >> in.txt; echo z > new.txt; export OK=1")
        assert result.exit_code == 0, out
        assert out.startswith("65534\n")
        assert result.env["OK"] == "1"
    finally:
        session.close()


def test_output_reaches_the_log_in_whole_lines_and_partial_lines_still_show(
    runner: DockerRunner, busybox_box: ImageRef, workspace: Workspace
) -> None:
    from bot.masking import Masker

    secret = "split-secret-value-42"
    session = runner.open(busybox_box, {}, workspace, None, MemoryLog())
    try:
        log = MemoryLog(Masker([secret]))
        # The secret is written in two pieces, with a pause between them; then a prompt
        # without a newline.
        code = (
            'printf "token=%s" "${S%%value-42}"; sleep 0.1; printf "value-42\\n"\n'
            'printf "Continue? "; sleep 1; echo yes'
        )
        result = session.run_script(
            code, env={}, secrets={"S": secret}, cwd=session.paths.source,
            timeouts=NO_LIMITS, log=log,
        )  # fmt: skip
        assert result.exit_code == 0
        assert secret not in log.text
        assert "token=****\n" in log.text
        assert "Continue? " in log.chunks and "yes\n" in log.chunks
    finally:
        session.close()


def test_parallel_sessions_do_not_see_each_other(
    runner: DockerRunner, busybox_box: ImageRef, tmp_path: Path
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    def one(name: str) -> tuple[int, str, str]:
        ws = Workspace.create(tmp_path / name, tmp_path / f"cache-{name}")
        (ws.source / "who.txt").write_text(name)
        session = runner.open(busybox_box, {}, ws, None, MemoryLog())
        try:
            result, out = _run(session, "sleep 0.5; cat who.txt; export WHO=$(cat who.txt)")
            return result.exit_code, out, result.env.get("WHO", "")
        finally:
            session.close()

    with ThreadPoolExecutor(3) as pool:
        results = list(pool.map(one, ["a", "b", "c"]))
    assert results == [(0, "a", "a"), (0, "b", "b"), (0, "c", "c")]


def test_no_step_file_or_env_dump_is_left_in_the_box_and_nothing_of_the_bot_is_mounted(
    runner: DockerRunner, busybox_box: ImageRef, workspace: Workspace, dockerd: Dockerd
) -> None:
    session = runner.open(busybox_box, {}, workspace, None, MemoryLog())
    try:
        _run(session, "export A=1", secrets={"TOKEN": "helper-secret-1"})
        _run(session, 'setMessage "kept?"; exit 0')
        with pytest.raises(StepError, match="a message"):
            _run(session, 'fail "a message"')
        result, out = _run(session, 'ls -A /pipeline/.wercker-bot; echo "me=$WB_SCRIPT"')
        # Only the listing step's own script is there while it runs.
        assert result.exit_code == 0
        name, me = out.split()
        assert me == f"me=/pipeline/.wercker-bot/{name}"
        assert session.container_id is not None
        info = dockerd.client().api.inspect_container(session.container_id)
        assert [m["Destination"] for m in info["Mounts"]] == [session.paths.cache]
        assert info["HostConfig"]["Tmpfs"] == {"/pipeline/.wercker-bot": HELPER_TMPFS}
        # The workspace's helper dir is the bot's own: the box never sees it.
        assert list(workspace.helper.iterdir()) == []
    finally:
        session.close()


def _sockets_to(path: str) -> int:
    """How many of this process's descriptors are sockets connected to ``path``."""
    count = 0
    for name in os.listdir("/proc/self/fd"):
        try:
            if not os.readlink(f"/proc/self/fd/{name}").startswith("socket:"):
                continue
            with socket.socket(fileno=os.dup(int(name))) as sock:
                if sock.family == socket.AF_UNIX and sock.getpeername() == path:
                    count += 1
        except OSError:
            continue  # closed meanwhile, or not connected
    return count


def test_a_closed_session_leaves_no_socket_to_the_engine_open(
    runner: DockerRunner, busybox_box: ImageRef, workspace: Workspace, dockerd: Dockerd
) -> None:
    """A bot runs for months: every client and stream a session opened (steps' output,
    the bot's own commands, a timed-out step, copies out of the box, one refused midway)
    is closed by ``close``, not left for the garbage collector."""
    path = dockerd.host.removeprefix("unix://")
    gc.collect()
    before = _sockets_to(path)
    gc.disable()  # a leaked socket must show in the count, not be collected away
    try:
        session = runner.open(busybox_box, {}, workspace, None, MemoryLog())
        try:
            _run(session, "echo out; echo err >&2; export A=1")
            _run(session, "while :; do echo tick; sleep 0.1; done", timeouts=Timeouts(1.0, None))
            session.collect(session.paths.source)
            with pytest.raises(InfrastructureError, match="limit"):
                session.collect(session.paths.source, max_bytes=1)  # refused midway
            assert _sockets_to(path) > before  # the count sees the session's own
        finally:
            session.close()
        assert _sockets_to(path) == before
    finally:
        gc.enable()
