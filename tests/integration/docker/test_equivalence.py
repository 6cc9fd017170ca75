"""One wercker.yml, both runners, through ``wercker-bot run`` (the real orchestration): the
images must be equivalent (Cmd, Entrypoint, Env keys, ExposedPorts, WorkingDir, User,
Labels and the files under /pipeline/source). Also prints the e2e time of each runner."""

from __future__ import annotations

import io
import tarfile
import time
from pathlib import Path
from typing import Any

import pytest

from bot.cli import main
from tests.harness.dockerd import Dockerd
from tests.integration.docker.conftest import Registry

SECRET = "tok-equivalence-5e1f"
WERCKER_YML = """\
box: {box}
build:
  steps:
    - script:
        name: write files
        code: |
          mkdir -p web
          printf 'hello from %s\\n' "$WERCKER_GIT_BRANCH" > web/index.txt
          printf '%s\\n' "$GREETING_SOURCE" > web/from-env.txt
          export COPIED_TOKEN="$DEPLOY_TOKEN"
    - internal/docker-push:
        repository: {host}/equiv/{kind}
        tag: v1 $WERCKER_GIT_BRANCH
        cmd: cat /pipeline/source/web/index.txt
        ports: 8080 9000/udp
        env: GREETING=hi MODE="two words"
        labels: team=ci
        working-dir: /pipeline/source
        user: root
        stopsignal: SIGINT
"""
CONFIG = """\
data_dir = "{data}"
[runner]
kind = "{kind}"
docker_host = "{docker_host}"
[repos."acme/app"]
clone_url = "https://example.invalid/acme/app.git"
[repos."acme/app".env]
GREETING_SOURCE = "from the repo env"
[repos."acme/app".secrets]
DEPLOY_TOKEN = "{secret}"
"""
COMPARED = ("Cmd", "Entrypoint", "ExposedPorts", "WorkingDir", "User", "Labels", "StopSignal")


def _run(tmp_path: Path, kind: str, box: str, host: str, dockerd: Dockerd) -> tuple[float, str]:
    src = tmp_path / kind / "src"
    src.mkdir(parents=True)
    (src / "wercker.yml").write_text(WERCKER_YML.format(box=box, host=host, kind=kind))
    (src / "README").write_text("checked out\n")
    config = tmp_path / kind / "config.toml"
    config.write_text(
        CONFIG.format(
            data=tmp_path / kind / "data", kind=kind, docker_host=dockerd.host, secret=SECRET
        )
    )
    started = time.monotonic()
    code = main(
        ["run", str(src), "--config", str(config), "--runner", kind, "--branch", "feature/x",
         "--repo", "acme/app"]
    )  # fmt: skip
    took = time.monotonic() - started
    assert code == 0, f"wercker-bot run --runner {kind} exited {code}"
    return took, f"{host}/equiv/{kind}"


def _image(dockerd: Dockerd, repo: str) -> tuple[dict[str, Any], dict[str, bytes]]:
    """The pulled image's config and the files under /pipeline/source."""
    client = dockerd.client()
    client.api.pull(repo, tag="feature-x", auth_config={})
    ref = f"{repo}:feature-x"
    config = client.api.inspect_image(ref)["Config"]
    container = client.api.create_container(ref, command=["true"])
    try:
        chunks, _ = client.api.get_archive(container["Id"], "/pipeline/source")
        files: dict[str, bytes] = {}
        with tarfile.open(fileobj=io.BytesIO(b"".join(chunks))) as tar:
            for member in tar.getmembers():
                if member.isfile():
                    extracted = tar.extractfile(member)
                    assert extracted is not None
                    files[member.name] = extracted.read()
    finally:
        client.api.remove_container(container["Id"], force=True)
    return config, files


def test_same_wercker_yml_gives_equivalent_images_on_both_runners(
    tmp_path: Path,
    busybox_box: Any,
    box_registry: Registry,
    dockerd: Dockerd,
    capsys: pytest.CaptureFixture[str],
) -> None:
    box = str(busybox_box)
    local_s, local_repo = _run(tmp_path, "local", box, box_registry.host, dockerd)
    docker_s, docker_repo = _run(tmp_path, "docker", box, box_registry.host, dockerd)
    out = capsys.readouterr().out
    assert "runner: docker" in out and "runner: local" in out
    assert SECRET not in out

    local_cfg, local_files = _image(dockerd, local_repo)
    docker_cfg, docker_files = _image(dockerd, docker_repo)
    for key in COMPARED:
        assert (local_cfg.get(key) or None) == (docker_cfg.get(key) or None), key
    assert sorted(k.split("=")[0] for k in local_cfg["Env"]) == sorted(
        k.split("=")[0] for k in docker_cfg["Env"]
    )
    assert local_cfg["Env"] == docker_cfg["Env"]
    assert docker_cfg["Cmd"] == ["cat", "/pipeline/source/web/index.txt"]
    assert "MODE=two words" in docker_cfg["Env"]
    assert SECRET not in str(local_cfg) + str(docker_cfg)
    # wercker.yml differs by the target repository only.
    assert local_files.pop("source/wercker.yml") != docker_files.pop("source/wercker.yml")
    assert local_files == docker_files
    assert docker_files["source/web/index.txt"] == b"hello from feature/x\n"
    assert docker_files["source/web/from-env.txt"] == b"from the repo env\n"

    with capsys.disabled():
        print(
            f"\n[e2e] wercker-bot run, same wercker.yml: docker runner {docker_s:.2f}s, "
            f"local runner {local_s:.2f}s ({docker_s / max(local_s, 1e-3):.1f}x)"
        )


AFTER_STEPS_YML = """\
box: {box}
command-timeout: 1
build:
  steps:
    - script:
        name: kills the box
        code: |
          echo precious > kept.txt
          kill 1
          sleep 5
    - script:
        name: never runs
        code: echo should-not-run
  after-steps:
    - script:
        name: notify
        code: |
          echo "after-step sees $WERCKER_RESULT and $(cat kept.txt)"
"""


def test_after_steps_run_in_a_restarted_box_through_the_orchestration(
    tmp_path: Path, busybox_box: Any, dockerd: Dockerd, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "wercker.yml").write_text(AFTER_STEPS_YML.format(box=busybox_box))
    config = tmp_path / "config.toml"
    config.write_text(
        CONFIG.format(data=tmp_path / "data", kind="docker", docker_host=dockerd.host, secret="x")
    )
    code = main(["run", str(src), "--config", str(config), "--branch", "main"])
    out = capsys.readouterr().out
    assert code != 0, out
    assert "restarting the box container" in out
    assert "after-step sees failed and precious" in out
    assert "should-not-run" not in out
    client = dockerd.client()
    assert not [c for c in client.containers.list(all=True) if c.name.startswith("wercker-bot-")]
