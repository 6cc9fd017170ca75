"""Services on the docker runner, on a real engine: a busybox ``httpd`` service built here
with an EXPOSE'd port, reached from a step through the link variables and by name, and no
container left behind (after a pass, a failing step, and a dropped session → sweep)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.cli import EXIT_FAILED, main
from bot.errors import InfrastructureError
from bot.images import ImageRef
from bot.logs import MemoryLog
from bot.runners.base import ServiceBox, Timeouts, Workspace
from bot.runners.docker import DockerRunner
from bot.runners.docker.sweep import sweep_boxes
from tests.harness.dockerd import Dockerd
from tests.integration.docker.conftest import Registry

NO_LIMITS = Timeouts(command=None, no_response=None)
WEB_REPOSITORY = "acme/web"
# busybox httpd serving /etc: GET /passwd answers the image's passwd file.
DOCKERFILE = """FROM {base}
EXPOSE 8080
CMD ["/bin/busybox", "httpd", "-f", "-p", "8080", "-h", "/etc"]
"""
FETCH = "busybox wget -q -O - http://{host}:{port}/passwd"


def _ours(dockerd: Dockerd) -> list[str]:
    client = dockerd.client()
    return [c.name for c in client.containers.list(all=True) if c.name.startswith("wercker-bot-")]


@pytest.fixture(scope="session")
def web_image(dockerd: Dockerd, busybox_box: ImageRef, box_registry: Registry) -> ImageRef:
    """``acme/web`` in ``box_registry``: busybox httpd on 8080 (EXPOSE'd), built on the
    engine from the busybox box and pushed; the local copy is removed so a run pulls it."""
    client = dockerd.client()
    base = f"{busybox_box.registry}/{busybox_box.repository}:{busybox_box.reference}"
    client.api.pull(f"{busybox_box.registry}/{busybox_box.repository}", tag="latest")
    local = f"{box_registry.host}/{WEB_REPOSITORY}"
    dockerfile = io.BytesIO(DOCKERFILE.format(base=base).encode())
    for line in client.api.build(
        fileobj=dockerfile, tag=f"{local}:latest", network_mode="none", decode=True, rm=True
    ):
        assert "error" not in line, line
    for line in client.api.push(local, tag="latest", auth_config={}, stream=True, decode=True):
        assert "error" not in line, line
    client.api.remove_image(f"{local}:latest")
    return box_registry.box(WEB_REPOSITORY)


def _service(image: ImageRef, name: str = "web") -> ServiceBox:
    return ServiceBox(name=name, image=image, env={"GREETING": "hi"})


def _run(session: Any, code: str) -> tuple[int, str]:
    log = MemoryLog()
    result = session.run_script(
        code, env={}, secrets={}, cwd=session.paths.source, timeouts=NO_LIMITS, log=log
    )
    return result.exit_code, log.text


@pytest.fixture
def clean(dockerd: Dockerd) -> Iterator[None]:
    assert _ours(dockerd) == []
    yield
    assert _ours(dockerd) == []


def test_a_service_is_reached_by_link_variables_and_by_name(
    runner: DockerRunner, busybox_box: ImageRef, web_image: ImageRef, workspace: Workspace,
    dockerd: Dockerd, clean: None,
) -> None:  # fmt: skip
    log = MemoryLog()
    session = runner.open(busybox_box, {}, workspace, None, log, services=[_service(web_image)])
    try:
        assert len(_ours(dockerd)) == 3  # the namespace holder, the service, the box
        code, out = _run(
            session,
            'echo "link=$WEB_PORT addr=$WEB_PORT_8080_TCP_ADDR"; '
            + FETCH.format(host="$WEB_PORT_8080_TCP_ADDR", port="$WEB_PORT_8080_TCP_PORT")
            + "; echo; "
            + FETCH.format(host="web", port=8080),
        )
        assert code == 0, out
        assert "link=tcp://127.0.0.1:8080 addr=127.0.0.1" in out
        assert out.count("root:x:0:0") == 2, out
        # A step that stops the box does not take the services' network with it.
        _run(session, "kill 1")
        session.restart(log)
        code, out = _run(session, FETCH.format(host="web", port=8080))
        assert code == 0 and "root:x:0:0" in out, out
    finally:
        session.close()
    assert "service 'web'" in log.text and "pulling" in log.text


def test_a_service_that_stops_at_once_fails_the_open_with_a_short_tail(
    runner: DockerRunner, busybox_box: ImageRef, workspace: Workspace, clean: None
) -> None:
    broken = ServiceBox(name="db", image=busybox_box, cmd=("sh", "-c", "echo no config; exit 3"))
    log = MemoryLog()
    with pytest.raises(InfrastructureError, match=r"'db' stopped right after it started \(exit 3"):
        runner.open(busybox_box, {}, workspace, None, log, services=[broken])
    assert "no config" in log.text


def test_services_of_a_dead_bot_are_swept(
    runner: DockerRunner, busybox_box: ImageRef, web_image: ImageRef, workspace: Workspace,
    dockerd: Dockerd, clean: None, monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    session = runner.open(
        busybox_box, {}, workspace, None, MemoryLog(), services=[_service(web_image)]
    )
    assert len(_ours(dockerd)) == 3
    # Dropped without close; its owner is then seen as dead: the sweep removes all three.
    monkeypatch.setattr("bot.runners.docker.sweep.process_alive", lambda owner: False)
    removed = sweep_boxes(dockerd.client().api)
    assert len(removed) == 3
    session.close()


def _config(tmp_path: Path, dockerd: Dockerd) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(
        f'data_dir = {json.dumps(str(tmp_path / "data"))}\n[runner]\nkind = "docker"\n'
        f"docker_host = {json.dumps(dockerd.host)}\n"
        '[repos."acme/app"]\nclone_url = "https://example.invalid/acme/app.git"\n'
    )
    return path


def _wercker_run(tmp_path: Path, dockerd: Dockerd, text: str) -> int:
    src = tmp_path / "src"
    src.mkdir()
    (src / "wercker.yml").write_text(text)
    return main(
        ["run", str(src), "--config", str(_config(tmp_path, dockerd)), "--runner", "docker",
         "--repo", "acme/app", "--branch", "main"]
    )  # fmt: skip


@pytest.mark.parametrize("fails", [False, True], ids=["passing", "failing"])
def test_a_wercker_yml_service_runs_and_is_removed_after_the_pipeline(
    fails: bool, tmp_path: Path, busybox_box: ImageRef, web_image: ImageRef, dockerd: Dockerd,
    clean: None, capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    text = f"""box: {busybox_box}
services:
  - id: {web_image}
    name: www
    env:
      mode: test
build:
  steps:
    - script:
        name: reach
        code: |
          {FETCH.format(host="$WWW_PORT_8080_TCP_ADDR", port="$WWW_PORT_8080_TCP_PORT")}
          {FETCH.format(host="www", port=8080)}
          {"exit 7" if fails else "true"}
"""
    code = _wercker_run(tmp_path, dockerd, text)
    out = capsys.readouterr().out
    assert code == (EXIT_FAILED if fails else 0), out
    assert out.count("root:x:0:0") == 2, out
