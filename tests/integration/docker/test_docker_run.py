"""``internal/docker-run`` and ``internal/docker-kill`` on a real engine, through
``wercker-bot run``: a busybox httpd started by a step is reached by a later step (link
variables and name), killed by another, and what is still running at the end is removed."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.cli import EXIT_FAILED
from bot.images import ImageRef
from tests.harness.dockerd import Dockerd
from tests.integration.docker.test_services import FETCH, _ours, _wercker_run, web_image

__all__ = ["web_image"]  # the session fixture, shared with test_services


def test_docker_run_then_kill(
    tmp_path: Path, busybox_box: ImageRef, web_image: ImageRef, dockerd: Dockerd,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    assert _ours(dockerd) == []
    text = f"""box: {busybox_box}
build:
  steps:
    - internal/docker-run:
        name: web
        image: {web_image}
        env: GREETING=hi
    - script:
        name: reach
        code: |
          echo "link=$WEB_PORT"
          {FETCH.format(host="$WEB_PORT_8080_TCP_ADDR", port="$WEB_PORT_8080_TCP_PORT")}
          {FETCH.format(host="web", port=8080)}
    - internal/docker-kill:
        name: web
    - script:
        name: gone
        code: |
          if {FETCH.format(host="127.0.0.1", port=8080)}; then echo STILL-THERE; exit 1; fi
    - internal/docker-run:
        name: left
        image: {web_image}
"""
    code = _wercker_run(tmp_path, dockerd, text)
    out = capsys.readouterr().out
    assert code == 0, out
    assert "link=tcp://127.0.0.1:8080" in out
    assert out.count("root:x:0:0") == 2, out
    assert "STILL-THERE" not in out
    assert _ours(dockerd) == []  # 'left' went with the pipeline


def test_docker_run_of_an_image_the_registry_does_not_have_fails_the_build(
    tmp_path: Path, busybox_box: ImageRef, box_registry: object, dockerd: Dockerd,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    host = busybox_box.registry
    text = f"""box: {busybox_box}
build:
  steps:
    - internal/docker-run:
        name: db
        image: {host}/acme/missing
"""
    code = _wercker_run(tmp_path, dockerd, text)
    out = capsys.readouterr().out
    # The registry answered that the image the step names does not exist: the user's
    # wercker.yml, so the build fails (a registry that cannot be reached would error it).
    assert code == EXIT_FAILED, out
    assert "acme/missing" in out and "check the image name and tag in the step's 'image'" in out
    assert _ours(dockerd) == []
