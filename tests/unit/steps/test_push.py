"""``internal/docker-push`` and ``internal/docker-scratch-push`` (``steps/push.py``) with fake
sessions and pushers typed against the ``Pusher`` protocol: which pusher gets what (the box
container, a built image, or directories as layers), the target and config from the
options, and clear errors for what cannot be pushed. Nothing is pushed for real here (the
registry and engine paths: tests/integration)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import docker
import pytest

from bot.engine import BoxSnapshot, EngineHandle
from bot.errors import StepConfigError
from bot.images import ImageRef
from bot.logs import Log, MemoryLog
from bot.pushers.engine.model import BuiltImage, EngineImage
from bot.pushers.model import ImageSpec, LayerDir, PushResult, Target
from bot.runners.base import GuestPaths, ScriptResult, Timeouts
from bot.wercker.model import Loc, StepSpec
from steps.base import BuildFacts, StepContext, StepOutcome
from steps.push import DockerPushStep, DockerScratchPushStep

DIGEST = "sha256:" + "d" * 64
FACTS = BuildFacts("acme/app", "main", "", "c" * 40, "", "1", "", "2026-01-02T03:04:05Z")


@dataclass
class FakeSession:
    """A ``Session`` whose guest dirs are host dirs under ``root``; ``collected`` records
    which guest dirs the step asked for."""

    root: Path
    kind: str = "local"
    can_commit: bool = False
    collected: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        for name in ("source", "output", "cache"):
            (self.root / name).mkdir(parents=True, exist_ok=True)
        self.paths = GuestPaths(
            str(self.root),
            str(self.root),
            str(self.root / "source"),
            str(self.root / "output"),
            str(self.root / "cache"),
        )

    def run_script(
        self,
        code: str,
        *,
        env: dict[str, str],
        secrets: dict[str, str],
        cwd: str,
        timeouts: Timeouts,
        log: Log,
    ) -> ScriptResult:
        raise AssertionError("a push step runs no script")

    def collect(self, guest_dir: str) -> Path:
        self.collected.append(guest_dir)
        return Path(guest_dir)

    def put_dir(self, source: Path, name: str) -> str:
        raise AssertionError("a push step stages nothing")

    def restart(self, log: Log) -> None:
        pass

    def close(self) -> None:
        pass


@dataclass
class FakeDockerSession(FakeSession):
    """A ``SnapshotSession`` (the docker runner): its box container is ``box``."""

    kind: str = "docker"
    can_commit: bool = True
    box: BoxSnapshot | None = None

    def snapshot(self) -> BoxSnapshot:
        assert self.box is not None
        return self.box


class RecordingPusher:
    """``Pusher[ImageSpec]`` (the daemonless pusher): records what it was asked to push."""

    def __init__(self) -> None:
        self.pushed: list[tuple[ImageSpec, Target]] = []

    def push(self, source: ImageSpec, target: Target, log: Log) -> PushResult:
        self.pushed.append((source, target))
        return PushResult(target.registry, target.repository, target.tags, DIGEST)

    def sweep(self) -> list[Path]:
        return []


class RecordingEnginePusher:
    """``EngineImagePusher``: records pushes; builds nothing."""

    def __init__(self) -> None:
        self.pushed: list[tuple[EngineImage, Target]] = []

    def push(self, source: EngineImage, target: Target, log: Log) -> PushResult:
        self.pushed.append((source, target))
        return PushResult(target.registry, target.repository, target.tags, DIGEST)

    def sweep(self) -> list[Path]:
        return []

    def build(
        self, box: BoxSnapshot, context_dir: Path, options: dict[str, Any], name: str, log: Log
    ) -> BuiltImage:
        raise AssertionError("a push step builds nothing")


def box_snapshot() -> BoxSnapshot:
    client = cast(docker.DockerClient, SimpleNamespace(api=None))
    return BoxSnapshot(EngineHandle(client, client), "box1", {"Cmd": ["sh"]}, "built/box1-")


@dataclass
class Run:
    ctx: StepContext
    pusher: RecordingPusher
    engine: RecordingEnginePusher
    log: MemoryLog

    def step(self, step: DockerPushStep | DockerScratchPushStep) -> StepOutcome:
        return step.run(self.ctx)


def context(
    session: FakeSession,
    options: dict[str, str],
    *,
    facts: BuildFacts = FACTS,
    lookup: dict[str, str] | None = None,
    box: ImageRef | None = None,
    built: dict[str, str] | None = None,
) -> Run:
    pusher, engine, log = RecordingPusher(), RecordingEnginePusher(), MemoryLog()
    ctx = StepContext(
        step=StepSpec("internal/docker-push", Loc("wercker.yml", 3, 5), "push", dict(options)),
        session=session,
        env={},
        secrets={},
        lookup=lookup or {},
        facts=facts,
        log=log,
        timeouts=Timeouts(),
        pusher=pusher,
        engine_pusher=engine,
        box=box,
        built_images=built or {},
    )
    return Run(ctx, pusher, engine, log)


# --- docker-scratch-push ---------------------------------------------------------------------


def test_scratch_push_puts_the_output_dir_at_root_with_no_base(tmp_path: Path) -> None:
    session = FakeSession(tmp_path)
    (tmp_path / "output" / "app").write_text("binary")
    run = context(session, {"repository": "127.0.0.1:5000/acme/app", "cmd": "/app"})
    outcome = run.step(DockerScratchPushStep())
    ((spec, target),) = run.pusher.pushed
    assert spec.layers == [LayerDir(tmp_path / "output", "/")] and spec.base is None
    assert spec.config.cmd == ["/app"]
    assert (target.registry, target.repository, target.tags) == (
        "127.0.0.1:5000",
        "acme/app",
        ("main",),
    )
    assert run.engine.pushed == []
    assert outcome.images == [PushResult("127.0.0.1:5000", "acme/app", ("main",), DIGEST)]
    assert outcome.message.startswith(f"Pushed acme/app:main ({DIGEST[:19]}…) in ")
    assert f"Pushed 127.0.0.1:5000/acme/app:main ({DIGEST})" in run.log.text
    assert "scratch image from output dir" in run.log.text


def test_scratch_push_of_an_empty_output_takes_the_source_dir(tmp_path: Path) -> None:
    session = FakeSession(tmp_path)
    run = context(session, {"repository": "acme/app"})
    run.step(DockerScratchPushStep())
    ((spec, _),) = run.pusher.pushed
    assert spec.layers == [LayerDir(tmp_path / "source", "/")]
    assert session.collected == [str(tmp_path / "output"), str(tmp_path / "source")]
    assert "scratch image from source dir" in run.log.text


def test_an_output_dir_that_is_a_symlink_is_not_followed(tmp_path: Path) -> None:
    session = FakeSession(tmp_path)
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "secret").write_text("x")
    (tmp_path / "output").rmdir()
    os.symlink(tmp_path / "elsewhere", tmp_path / "output")
    run = context(session, {"repository": "acme/app"})
    run.step(DockerScratchPushStep())
    ((spec, _),) = run.pusher.pushed
    assert spec.layers == [LayerDir(tmp_path / "source", "/")]
    assert "is a symlink; it is not followed" in run.log.text


# --- docker-push ---------------------------------------------------------------------------


def test_docker_push_on_the_local_runner_layers_the_source_over_the_box(tmp_path: Path) -> None:
    box = ImageRef("registry-1.docker.io", "library/alpine", "3.20")
    run = context(FakeSession(tmp_path), {"repository": "acme/app", "tag": "v1 v2"}, box=box)
    run.step(DockerPushStep())
    ((spec, target),) = run.pusher.pushed
    assert spec.layers == [LayerDir(tmp_path / "source", "/pipeline/source")]
    assert spec.base == box
    assert target.tags == ("v1", "v2")
    assert run.engine.pushed == []


def test_docker_push_without_a_box_warns_that_only_the_source_is_in_it(tmp_path: Path) -> None:
    run = context(FakeSession(tmp_path), {"repository": "acme/app"})
    run.step(DockerPushStep())
    ((spec, _),) = run.pusher.pushed
    assert spec.base is None
    assert "no box in wercker.yml: the image holds only /pipeline/source" in run.log.text


def test_docker_push_on_the_docker_runner_commits_the_box(tmp_path: Path) -> None:
    box = box_snapshot()
    session = FakeDockerSession(tmp_path, box=box)
    run = context(session, {"repository": "acme/app", "entrypoint": "/run"})
    outcome = run.step(DockerPushStep())
    ((image, target),) = run.engine.pushed
    assert image.origin is box and image.config.entrypoint == ["/run"]
    assert target.repository == "acme/app"
    assert run.pusher.pushed == [] and session.collected == []
    assert outcome.images[0].digest == DIGEST


def test_docker_push_with_image_name_pushes_the_built_image(tmp_path: Path) -> None:
    box = box_snapshot()
    session = FakeDockerSession(tmp_path, box=box)
    built = {"web": "sha256:" + "b" * 64}
    run = context(session, {"repository": "acme/app", "image-name": "web"}, built=built)
    run.step(DockerPushStep())
    ((image, _),) = run.engine.pushed
    assert image.origin == BuiltImage(box.engine, built["web"])


def test_image_name_not_built_in_this_pipeline_is_a_config_error(tmp_path: Path) -> None:
    session = FakeDockerSession(tmp_path, box=box_snapshot())
    run = context(session, {"repository": "acme/app", "image-name": "web"}, built={"api": "x"})
    with pytest.raises(StepConfigError, match="image-name 'web' was not built by an earlier"):
        run.step(DockerPushStep())
    assert run.engine.pushed == [] and run.pusher.pushed == []


def test_image_name_on_the_local_runner_is_a_config_error(tmp_path: Path) -> None:
    run = context(FakeSession(tmp_path), {"repository": "a/b", "image-name": "web"}, built={})
    with pytest.raises(StepConfigError, match="internal/docker-build"):
        run.step(DockerPushStep())
    assert run.pusher.pushed == []


# --- what both share: options, target, secrets ---------------------------------------------


@pytest.mark.parametrize(
    ("branch", "git_tag", "tag"), [("main", "", "main"), ("", "v1.2", "v1.2"), ("", "", "latest")]
)
def test_the_default_tag_is_the_branch_else_the_git_tag_else_latest(
    tmp_path: Path, branch: str, git_tag: str, tag: str
) -> None:
    facts = BuildFacts("acme/app", branch, git_tag, "c" * 40, "", "1", "", "")
    run = context(FakeSession(tmp_path), {"repository": "acme/app"}, facts=facts)
    run.step(DockerScratchPushStep())
    assert run.pusher.pushed[0][1].tags == (tag,)


def test_options_are_expanded_against_the_lookup(tmp_path: Path) -> None:
    lookup = {"IMAGE": "acme/app", "VERSION": "1.0"}
    run = context(
        FakeSession(tmp_path), {"repository": "$IMAGE", "tag": "${VERSION}"}, lookup=lookup
    )
    run.step(DockerScratchPushStep())
    target = run.pusher.pushed[0][1]
    assert (target.repository, target.tags) == ("acme/app", ("1.0",))


def test_credentials_from_the_options_reach_the_target_and_are_masked(tmp_path: Path) -> None:
    options = {"repository": "quay.io/acme/app", "username": "robot", "password": "pw-123456"}
    run = context(FakeSession(tmp_path), options)
    run.step(DockerScratchPushStep())
    target = run.pusher.pushed[0][1]
    assert (target.registry, target.auth.username, target.auth.password) == (
        "quay.io",
        "robot",
        "pw-123456",
    )
    run.ctx.log.info("the password is pw-123456")
    assert "pw-123456" not in run.log.text


def test_a_missing_repository_fails_before_anything_is_pushed(tmp_path: Path) -> None:
    run = context(FakeSession(tmp_path), {"tag": "v1"})
    with pytest.raises(StepConfigError, match="repository is not set"):
        run.step(DockerScratchPushStep())
    assert run.pusher.pushed == []


def test_a_malformed_option_names_the_option(tmp_path: Path) -> None:
    run = context(FakeSession(tmp_path), {"repository": "acme/app", "ports": "http"})
    with pytest.raises(StepConfigError, match="ports"):
        run.step(DockerPushStep())
    assert run.pusher.pushed == []
