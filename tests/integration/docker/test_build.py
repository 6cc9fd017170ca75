"""``internal/docker-build`` then ``internal/docker-push`` with ``image-name``."""

from __future__ import annotations

from typing import Any

import pytest

from bot.errors import StepConfigError
from bot.images import ImageRef
from bot.logs import MemoryLog
from bot.pushers.credentials import RegistryCredentials
from bot.pushers.engine import EnginePusher
from bot.runners.base import Session, Timeouts, Workspace
from bot.runners.docker import DockerRunner
from bot.runners.local import LocalRunner
from bot.wercker.model import Loc, StepSpec
from steps.base import BuildFacts, StepContext
from steps.docker_build import NEEDS_ENGINE, DockerBuildStep
from steps.push import DockerPushStep
from tests.harness.dockerd import Dockerd
from tests.integration.docker.conftest import Registry

FACTS = BuildFacts(
    repo="acme/app",
    branch="main",
    git_tag="",
    commit="0123456789abcdef0123456789abcdef01234567",
    source_url="https://github.com/acme/app",
    run_id="run1",
    run_url="http://bot/runs/run1",
    created="2026-11-27T10:00:00Z",
)


def _ctx(session: Session, step_id: str, options: dict[str, str], built: dict[str, str],
         lookup: dict[str, str] | None = None) -> StepContext:  # fmt: skip
    step = StepSpec(step_id, Loc("wercker.yml", 1, 1), step_id, dict(options))
    return StepContext(
        step=step,
        session=session,
        env={},
        secrets={},
        lookup=lookup or {},
        facts=FACTS,
        log=MemoryLog(),
        timeouts=Timeouts(),
        pusher=None,  # type: ignore[arg-type]  # the engine pushes here
        engine_pusher=EnginePusher(RegistryCredentials({})),
        built_images=built,
    )


def test_build_from_the_containers_source_then_push_by_image_name(
    runner: DockerRunner,
    busybox_box: ImageRef,
    box_registry: Registry,
    workspace: Workspace,
    dockerd: Dockerd,
) -> None:
    (workspace.source / "Dockerfile").write_text(
        f"FROM {busybox_box}\n"
        "ARG GREETING\n"
        "COPY app.txt /app.txt\n"
        'RUN echo "$GREETING" > /greeting.txt\n'
        'CMD ["cat", "/app.txt", "/greeting.txt"]\n'
    )
    session = runner.open(busybox_box, {}, workspace, None, MemoryLog())
    built: dict[str, str] = {}
    try:
        # app.txt exists only in the container: the build must see the container's source.
        result = session.run_script(
            "echo compiled-in-the-box > app.txt",
            env={},
            secrets={},
            cwd=session.paths.source,
            timeouts=Timeouts(),
            log=MemoryLog(),
        )
        assert result.exit_code == 0
        build_ctx = _ctx(
            session,
            "internal/docker-build",
            {"image-name": "web", "build-args": "GREETING=$WORD", "labels": "stage=built"},
            built,
            lookup={"WORD": "hello-build"},
        )
        outcome = DockerBuildStep().run(build_ctx)
        assert "web" in built and outcome.message.startswith("Built web")
        repository = f"{box_registry.host}/tests/built"
        for tag in ("v1", "v2"):  # the built image survives a first push
            push_ctx = _ctx(
                session,
                "internal/docker-push",
                {"repository": repository, "tag": tag, "image-name": "web"},
                built,
            )
            pushed = DockerPushStep().run(push_ctx).images[0]
            assert pushed.digest.startswith("sha256:")
        # An entrypoint alone resets the built image's CMD, as on every push path.
        entry_ctx = _ctx(
            session,
            "internal/docker-push",
            {"repository": repository, "tag": "entry", "image-name": "web",
             "entrypoint": "cat /app.txt"},
            built,
        )  # fmt: skip
        DockerPushStep().run(entry_ctx)
    finally:
        session.close()

    client = dockerd.client()
    client.api.pull(repository, tag="v2", auth_config={})
    image = client.api.inspect_image(f"{repository}:v2")
    labels = image["Config"]["Labels"]
    assert labels["stage"] == "built"
    assert labels["org.opencontainers.image.revision"] == FACTS.commit
    out = client.containers.run(f"{repository}:v2", network_mode="none", remove=True)
    assert out == b"compiled-in-the-box\nhello-build\n"
    client.api.pull(repository, tag="entry", auth_config={})
    entry = client.api.inspect_image(f"{repository}:entry")["Config"]
    assert (entry["Entrypoint"], entry["Cmd"]) == (["cat", "/app.txt"], None)
    out = client.containers.run(f"{repository}:entry", network_mode="none", remove=True)
    assert out == b"compiled-in-the-box\n"
    # close() removed the session's built image.
    assert not [t for i in client.images.list() for t in i.tags if "wercker-bot-build" in t]


def test_build_failure_is_a_step_error_with_the_builders_message(
    runner: DockerRunner, busybox_box: ImageRef, workspace: Workspace
) -> None:
    (workspace.source / "Dockerfile").write_text(f"FROM {busybox_box}\nRUN exit 3\n")
    session = runner.open(busybox_box, {}, workspace, None, MemoryLog())
    try:
        from bot.errors import StepError

        with pytest.raises(StepError, match="returned a non-zero code: 3"):
            DockerBuildStep().run(_ctx(session, "internal/docker-build", {"image-name": "x"}, {}))
        with pytest.raises(StepConfigError, match="image-name not set"):
            DockerBuildStep().run(_ctx(session, "internal/docker-build", {}, {}))
        with pytest.raises(StepConfigError, match="leaves the source dir"):
            DockerBuildStep().run(
                _ctx(session, "internal/docker-build", {"image-name": "x", "context": ".."}, {})
            )
    finally:
        session.close()


def test_the_local_runner_cannot_build(workspace: Workspace) -> None:
    session: Any = LocalRunner(None).open(None, {}, workspace, None, MemoryLog())
    with pytest.raises(StepConfigError) as info:
        DockerBuildStep().run(_ctx(session, "internal/docker-build", {"image-name": "x"}, {}))
    assert str(info.value) == NEEDS_ENGINE
    assert NEEDS_ENGINE == 'internal/docker-build needs a Docker Engine ([runner] kind = "docker")'
