"""The engine pusher against a real engine and registry: the box snapshot committed with its
config, pushed; refusals."""

from __future__ import annotations

from typing import Any

import pytest

from bot.engine import auth_config, engine_repository
from bot.errors import InfrastructureError, RegistryAuthError, RegistryUnavailable
from bot.images import ImageRef, RegistryAuth
from bot.logs import MemoryLog
from bot.pushers.credentials import RegistryCredentials, registry_credentials
from bot.pushers.engine import EngineImage, EnginePusher
from bot.pushers.model import ImageConfig, PushResult, Target
from bot.runners.base import Timeouts, Workspace
from bot.runners.docker import DockerRunner
from bot.runners.docker.session import DockerSession
from tests.harness.dockerd import Dockerd
from tests.integration.docker.conftest import Registry

SECRETS = {"DEPLOY_TOKEN": "tok-3f9a8b7c6d", "DB_PASSWORD": "hunter2-hunter2"}


def push_box(
    session: DockerSession, config: ImageConfig, target: Target, log: MemoryLog | None = None
) -> PushResult:
    """What ``internal/docker-push`` does on the docker runner: the session's snapshot,
    pushed by the engine pusher."""
    return EnginePusher(RegistryCredentials(session.engine.registries)).push(
        EngineImage(session.snapshot(), config), target, log if log is not None else MemoryLog()
    )


def _pull(dockerd: Dockerd, ref: str) -> dict[str, Any]:
    client = dockerd.client()
    repo, _, tag = ref.rpartition(":")
    client.api.pull(repo, tag=tag, auth_config={})
    image: dict[str, Any] = client.api.inspect_image(ref)
    return image


def test_committed_box_runs_with_cmd_and_ports_and_keeps_secrets_out(
    runner: DockerRunner,
    busybox_box: ImageRef,
    box_registry: Registry,
    workspace: Workspace,
    dockerd: Dockerd,
) -> None:
    (workspace.source / "app.txt").write_text("from the checkout\n")
    session = runner.open(busybox_box, {"BOX_ONLY": "1"}, workspace, None, MemoryLog())
    try:
        result = session.run_script(
            'echo "built on $WERCKER_GIT_BRANCH" > built.txt; export LEAK="$DEPLOY_TOKEN"',
            env={"WERCKER_GIT_BRANCH": "main"},
            secrets=SECRETS,
            cwd=session.paths.source,
            timeouts=Timeouts(),
            log=MemoryLog(),
        )
        assert result.exit_code == 0
        config = ImageConfig(
            cmd=["sh", "-c", "cat /pipeline/source/app.txt /pipeline/source/built.txt"],
            ports=["8080/tcp", "9090/udp"],
            env={"GREETING": "hello $HOME"},
            labels={"org.opencontainers.image.revision": "abc123", "team": "a b"},
            working_dir="/pipeline/source",
            user="0",
            stop_signal="SIGINT",
            author="ci <ci@example.com>",
            message="built by wercker-bot",
        )
        target = Target(box_registry.host, "tests/committed", ("v1", "feature-x"))
        log = MemoryLog()
        pushed = push_box(session, config, target, log)
    finally:
        session.close()
    assert pushed.digest.startswith("sha256:")
    assert pushed.tags == ("v1", "feature-x")
    assert "committing the box container" in log.text

    ref = f"{box_registry.host}/tests/committed:feature-x"
    image = _pull(dockerd, ref)
    assert image["RepoDigests"] == [f"{box_registry.host}/tests/committed@{pushed.digest}"]
    cfg = image["Config"]
    assert cfg["Cmd"] == config.cmd
    assert not cfg["Entrypoint"]
    assert cfg["ExposedPorts"] == {"8080/tcp": {}, "9090/udp": {}}
    assert cfg["WorkingDir"] == "/pipeline/source"
    assert cfg["User"] == "0"
    assert cfg["StopSignal"] == "SIGINT"
    assert cfg["Labels"] == config.labels
    assert image["Author"] == "ci <ci@example.com>"
    # Box env plus the env option, literally; nothing from the build, never a secret.
    env = dict(item.split("=", 1) for item in cfg["Env"])
    assert env == {"PATH": env["PATH"], "GREETING": "hello $HOME"}
    for value in SECRETS.values():
        assert value not in str(image)

    out = dockerd.client().containers.run(ref, network_mode="none", remove=True)
    assert out == b"from the checkout\nbuilt on main\n"
    # Bot helper files and the cache stay out of the image (at most empty mount points).
    listing = dockerd.client().containers.run(
        ref,
        ["sh", "-c", "find /pipeline/.wercker-bot /pipeline/cache"],
        network_mode="none",
        remove=True,
    )
    assert listing.split() == [b"/pipeline/.wercker-bot", b"/pipeline/cache"]


def test_an_image_with_no_command_does_not_inherit_the_keepalive(
    runner: DockerRunner,
    busybox_box: ImageRef,
    box_registry: Registry,
    workspace: Workspace,
    dockerd: Dockerd,
) -> None:
    session = runner.open(busybox_box, {}, workspace, None, MemoryLog())
    try:
        # The box's Cmd is kept when the step sets none; an explicit empty one clears it.
        kept = push_box(session, ImageConfig(), Target(box_registry.host, "tests/keep", ("v1",)))
        cleared = push_box(
            session,
            ImageConfig(cmd=[], entrypoint=[], author="me"),
            Target(box_registry.host, "tests/cleared", ("v1",)),
        )
    finally:
        session.close()
    assert kept.digest and cleared.digest
    box_cmd = _pull(dockerd, str(busybox_box))["Config"]["Cmd"]
    assert _pull(dockerd, f"{box_registry.host}/tests/keep:v1")["Config"]["Cmd"] == box_cmd
    image = _pull(dockerd, f"{box_registry.host}/tests/cleared:v1")
    assert not image["Config"]["Cmd"] and not image["Config"]["Entrypoint"]
    assert image["Author"] == "me"


def test_wrong_password_fails_with_the_registrys_message(
    runner: DockerRunner,
    busybox_box: ImageRef,
    auth_registry: Registry,
    workspace: Workspace,
) -> None:
    session = runner.open(busybox_box, {}, workspace, None, MemoryLog())
    try:
        target = Target(
            auth_registry.host,
            "tests/refused",
            ("v1",),
            auth=RegistryAuth(username="alice", password="not-the-password"),
        )
        with pytest.raises(RegistryAuthError) as info:
            push_box(session, ImageConfig(), target)
        message = str(info.value)
        assert "unauthorized" in message.lower() or "authentication required" in message.lower()
        assert "not-the-password" not in message

        good = Target(auth_registry.host, "tests/accepted", ("v1",), auth=auth_registry.auth)
        assert push_box(session, ImageConfig(), good).digest
    finally:
        session.close()


def test_unreachable_registry_is_the_bots_trouble_with_its_facts(
    runner: DockerRunner, busybox_box: ImageRef, workspace: Workspace
) -> None:
    """An engine push to a registry that does not answer ends the step errored (the bot's
    environment), naming the registry."""
    session = runner.open(busybox_box, {}, workspace, None, MemoryLog())
    try:
        with pytest.raises(RegistryUnavailable, match=r"127\.0\.0\.1:9") as err:
            push_box(session, ImageConfig(), Target("127.0.0.1:9", "tests/nowhere", ("v1",)))
        assert isinstance(err.value, InfrastructureError)
        assert err.value.registry == "127.0.0.1:9"
    finally:
        session.close()


def test_docker_hub_names_carry_no_host() -> None:
    assert engine_repository("registry-1.docker.io", "acme/app") == "acme/app"
    assert engine_repository("docker.io", "library/busybox") == "library/busybox"
    assert engine_repository("127.0.0.1:5000", "acme/app") == "127.0.0.1:5000/acme/app"


def test_default_credentials_follow_the_daemonless_rules() -> None:
    resolve = registry_credentials({})
    assert resolve("127.0.0.1:5000", RegistryAuth()) == ("", "")
    assert auth_config("127.0.0.1:5000", RegistryAuth(), resolve) == {}
    assert resolve("quay.io", RegistryAuth(username="u", password="p")) == ("u", "p")
    assert resolve("gcr.io", RegistryAuth(username="_json_key", password='{"k":"a\\nb"}')) == (
        "_json_key",
        '{"k":"a\nb"}',
    )
    azure = RegistryAuth(azure_client_id="app-id", azure_client_secret="app-secret")
    assert resolve("acme.azurecr.io", azure) == ("app-id", "app-secret")
    assert auth_config("registry-1.docker.io", RegistryAuth(username="u", password="p")) == {
        "username": "u",
        "password": "p",
    }


def test_a_snapshot_describes_the_box_and_changes_nothing(
    runner: DockerRunner, busybox_box: ImageRef, workspace: Workspace
) -> None:
    from bot.errors import InfrastructureError
    from bot.runners.base import SnapshotSession, snapshot_of

    session = runner.open(busybox_box, {}, workspace, None, MemoryLog())
    try:
        assert isinstance(session, SnapshotSession)
        snap = snapshot_of(session)
        assert snap is not None and snap.container_id == session.container_id
        assert snap.base["Cmd"] == ["sh"]  # the box image's, not the keepalive
        assert snap.built_prefix == f"wercker-bot-build/{snap.container_id[:12]}-"
        assert session.snapshot() == snap  # nothing was committed or changed
    finally:
        session.close()
    with pytest.raises(InfrastructureError, match="gone"):
        session.snapshot()
