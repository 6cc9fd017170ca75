"""One wercker.yml, both runners, through ``wercker-bot run`` (the real orchestration): the
images must be equivalent (Cmd, Entrypoint, Env keys, ExposedPorts, WorkingDir, User,
Labels and the files under /pipeline/source). Also prints the e2e time of each runner.

``test_image_config_is_the_same_on_both_runners`` pushes one image per config case over a
box with ``Cmd ["sh"]``, labels, a port and duplicate ``Env`` keys: the docker runner
commits the box through the engine pusher, the local runner assembles it over the box with
the daemonless pusher, and both configs must be equal and follow ``merge_config``'s rules."""

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


def _run(
    tmp_path: Path, kind: str, box: str, host: str, dockerd: Dockerd, yml: str = WERCKER_YML
) -> tuple[float, str]:
    src = tmp_path / kind / "src"
    src.mkdir(parents=True)
    (src / "wercker.yml").write_text(yml.format(box=box, host=host, kind=kind))
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


# -- one push per image-config case, on both runners ------------------------------------------

PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DUP_ENV = [PATH_ENV, "DUP=first", "BASE_ONLY=1", "DUP=second", "BASE_ONLY=2"]
# The step's options of each case, and what the pushed config must hold (besides being the
# same on both runners). The boxes have Cmd ["sh"], no Entrypoint, port 80 and two labels;
# the "env" case runs in a pipeline whose box lists two Env keys twice.
CASES: dict[str, tuple[str, dict[str, Any]]] = {
    "entrypoint": (
        "entrypoint: /bin/echo from-entrypoint",
        {"Entrypoint": ["/bin/echo", "from-entrypoint"], "Cmd": None},
    ),
    "cmd": (
        "cmd: cat /pipeline/source/README",
        {"Entrypoint": None, "Cmd": ["cat", "/pipeline/source/README"]},
    ),
    "both": (
        "entrypoint: /bin/sh -c\n        cmd: \"'echo both'\"",
        {"Entrypoint": ["/bin/sh", "-c"], "Cmd": ["echo both"]},
    ),
    "env": (
        "env: DUP=x NEW=1 DUP=y",
        {"Env": [PATH_ENV, "DUP=y", "BASE_ONLY=2", "NEW=1"], "Cmd": ["sh"]},
    ),
    "ports": (
        "ports: 8080/udp 8080 9000/tcp 53/udp",
        {
            "ExposedPorts": {
                "80/tcp": {},
                "8080/udp": {},
                "8080/tcp": {},
                "9000/tcp": {},
                "53/udp": {},
            }
        },
    ),
    "labels": (
        'labels: team=ci "two words"=yes',
        {"Labels": {"team": "ci", "base": "1", "two words": "yes"}},
    ),
}


def _pushes(names: list[str]) -> str:
    return "".join(
        f"    - internal/docker-push:\n        repository: {{host}}/equiv/{{kind}}-{name}\n"
        f"        tag: v1\n        {CASES[name][0]}\n"
        for name in names
    )


CASES_YML = (
    "box: {box}\nbuild:\n  steps:\n"
    + _pushes([n for n in CASES if n != "env"])
    + "deploy:\n  box: {box}-dup-env\n  steps:\n"
    + _pushes(["env"])
)


@pytest.fixture(scope="module")
def config_box(busybox_box: Any, box_registry: Registry, dockerd: Dockerd) -> str:
    """busybox with ``Cmd ["sh"]``, port 80 and labels, pushed to ``box_registry`` as
    ``…/equiv/config-box:v1``, and as ``:v1-dup-env`` with duplicate ``Env`` keys (the
    engine's own commit keeps duplicates: a base image may have them)."""
    client = dockerd.client()
    source = f"{busybox_box.registry}/{busybox_box.repository}"
    client.api.pull(source, tag=busybox_box.reference, auth_config={})
    container = client.api.create_container(f"{source}:{busybox_box.reference}", command=["sh"])
    repo = f"{box_registry.host}/equiv/config-box"
    try:
        for tag, env in (("v1", [PATH_ENV]), ("v1-dup-env", DUP_ENV)):
            conf = {
                "Env": env,
                "Cmd": ["sh"],
                "ExposedPorts": {"80/tcp": {}},
                "Labels": {"team": "base", "base": "1"},
            }
            image = client.api.commit(container["Id"], conf=conf)["Id"]
            assert client.api.inspect_image(image)["Config"]["Env"] == env
            client.api.tag(image, repo, tag)
            for line in client.api.push(repo, tag=tag, auth_config={}, stream=True, decode=True):
                assert "error" not in line, line
            client.api.remove_image(image, force=True)
    finally:
        client.api.remove_container(container["Id"], force=True)
    return f"{repo}:v1"


@pytest.fixture(scope="module")
def case_configs(
    tmp_path_factory: pytest.TempPathFactory,
    config_box: str,
    box_registry: Registry,
    dockerd: Dockerd,
) -> dict[str, dict[str, dict[str, Any]]]:
    """``{runner kind: {case: pulled image Config}}``, from one ``wercker-bot run`` each."""
    tmp_path = tmp_path_factory.mktemp("config-cases")
    out: dict[str, dict[str, dict[str, Any]]] = {}
    client = dockerd.client()
    for kind in ("local", "docker"):
        _, prefix = _run(tmp_path, kind, config_box, box_registry.host, dockerd, CASES_YML)
        out[kind] = {}
        for name in CASES:
            client.api.pull(f"{prefix}-{name}", tag="v1", auth_config={})
            out[kind][name] = client.api.inspect_image(f"{prefix}-{name}:v1")["Config"]
    return out


@pytest.mark.parametrize("case", list(CASES))
def test_image_config_is_the_same_on_both_runners(
    case: str, case_configs: dict[str, dict[str, dict[str, Any]]]
) -> None:
    local, docker = case_configs["local"][case], case_configs["docker"][case]
    for key in (*COMPARED, "Env"):
        assert (local.get(key) or None) == (docker.get(key) or None), key
    for key, value in CASES[case][1].items():
        got = docker.get(key) or None
        if key == "Labels":  # besides the build's OCI labels
            assert got is not None
            got = {k: v for k, v in got.items() if not k.startswith("org.opencontainers.")}
        assert got == value, key
    labels = docker["Labels"]
    assert labels["team"] == ("ci" if case == "labels" else "base") and labels["base"] == "1"
