"""``internal/docker-build`` (``steps/docker_build.py``) with a fake docker session and an
engine pusher typed against ``EngineImagePusher``: the build options the engine gets from the
step's options, the built image kept under ``image-name``, and clear errors for what must not
be built (no engine, a context or Dockerfile outside the source, a linked ``.dockerignore``).
The build itself: tests/integration/docker/test_build.py."""

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
from bot.logs import Log, MemoryLog
from bot.pushers.engine.model import BuiltImage, EngineImage
from bot.pushers.model import ImageSpec, PushResult, Target
from bot.runners.base import GuestPaths, ScriptResult, Timeouts
from bot.wercker.model import Loc, StepSpec
from steps.base import BuildFacts, StepContext, StepOutcome
from steps.docker_build import NEEDS_ENGINE, DockerBuildStep

IMAGE_ID = "sha256:" + "b" * 64
FACTS = BuildFacts("acme/app", "main", "", "c" * 40, "", "1", "", "")


@dataclass
class FakeSession:
    """A ``Session`` whose guest dirs are host dirs under ``root`` (``collected`` records
    what the step copied out); ``box`` set makes it the docker runner's snapshot session."""

    root: Path
    box: BoxSnapshot | None = None
    kind: str = "local"
    can_commit: bool = False
    collected: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        (self.root / "source").mkdir(parents=True, exist_ok=True)
        source = str(self.root / "source")
        self.paths = GuestPaths(str(self.root), str(self.root), source, source, source)
        if self.box is not None:
            self.kind, self.can_commit = "docker", True

    def snapshot(self) -> BoxSnapshot:
        assert self.box is not None
        return self.box

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
        raise AssertionError("a build step runs no script")

    def collect(self, guest_dir: str) -> Path:
        self.collected.append(guest_dir)
        return Path(guest_dir)

    def put_dir(self, source: Path, name: str) -> str:
        raise AssertionError("a build step stages nothing")

    def restart(self, log: Log) -> None:
        pass

    def close(self) -> None:
        pass


@dataclass
class Build:
    box: BoxSnapshot
    context_dir: Path
    options: dict[str, Any]
    name: str


class RecordingEnginePusher:
    """``EngineImagePusher``: records each build and answers with ``IMAGE_ID``."""

    def __init__(self) -> None:
        self.builds: list[Build] = []

    def push(self, source: EngineImage, target: Target, log: Log) -> PushResult:
        raise AssertionError("a build step pushes nothing")

    def sweep(self) -> list[Path]:
        return []

    def build(
        self, box: BoxSnapshot, context_dir: Path, options: dict[str, Any], name: str, log: Log
    ) -> BuiltImage:
        self.builds.append(Build(box, context_dir, options, name))
        return BuiltImage(box.engine, IMAGE_ID)


class NoPusher:
    """``Pusher[ImageSpec]``: a build never pushes."""

    def push(self, source: ImageSpec, target: Target, log: Log) -> PushResult:
        raise AssertionError("a build step pushes nothing")

    def sweep(self) -> list[Path]:
        return []


def box_snapshot() -> BoxSnapshot:
    client = cast(docker.DockerClient, SimpleNamespace(api=None))
    return BoxSnapshot(EngineHandle(client, client), "box1", {}, "built/box1-")


@dataclass
class Run:
    ctx: StepContext
    session: FakeSession
    engine: RecordingEnginePusher
    log: MemoryLog

    def build(self) -> StepOutcome:
        return DockerBuildStep().run(self.ctx)


def context(tmp_path: Path, options: dict[str, str], *, engine: bool = True) -> Run:
    session = FakeSession(tmp_path, box_snapshot() if engine else None)
    pusher, log = RecordingEnginePusher(), MemoryLog()
    ctx = StepContext(
        step=StepSpec("internal/docker-build", Loc("wercker.yml", 4, 7), "build", options),
        session=session,
        env={},
        secrets={},
        lookup={"VERSION": "1.2"},
        facts=FACTS,
        log=log,
        timeouts=Timeouts(),
        pusher=NoPusher(),
        engine_pusher=pusher,
    )
    return Run(ctx, session, pusher, log)


def test_a_build_with_defaults_builds_the_source_and_keeps_the_image(tmp_path: Path) -> None:
    run = context(tmp_path, {"image-name": "web"})
    outcome = run.build()
    (build,) = run.engine.builds
    assert build.box is run.session.box and build.name == "web"
    assert build.context_dir == tmp_path / "source"
    assert build.options == {
        "buildargs": {},
        "labels": {},
        "nocache": False,
        "quiet": False,
        "pull": False,
    }
    assert run.ctx.built_images == {"web": IMAGE_ID}
    assert outcome.message == f"Built web ({IMAGE_ID[:19]})"
    assert f"building web from {tmp_path / 'source'}" in run.log.text


def test_every_option_reaches_the_build(tmp_path: Path) -> None:
    (tmp_path / "source" / "svc").mkdir(parents=True)
    options = {
        "image-name": " web ",
        "context": "svc",
        "dockerfile": "docker/../Dockerfile.ci",
        "build-args": "VERSION=$VERSION 'NOTE=two words'",
        "labels": "team=ci",
        "no-cache": "true",
        "q": "1",
        "squash": "True",
        "extra-hosts": "db:10.0.0.5 cache:10.0.0.6",
    }
    run = context(tmp_path, options)
    run.build()
    (build,) = run.engine.builds
    assert build.name == "web" and build.context_dir == tmp_path / "source" / "svc"
    assert run.session.collected == [str(tmp_path / "source" / "svc")]
    assert build.options == {
        "buildargs": {"VERSION": "1.2", "NOTE": "two words"},
        "labels": {"team": "ci"},
        "nocache": True,
        "quiet": True,
        "pull": False,
        "dockerfile": "Dockerfile.ci",
        "squash": True,
        "extra_hosts": {"db": "10.0.0.5", "cache": "10.0.0.6"},
    }


@pytest.mark.parametrize("value", ["yes", "on", "0", "false", ""])
def test_only_gos_true_words_turn_no_cache_on(tmp_path: Path, value: str) -> None:
    run = context(tmp_path, {"image-name": "web", "no-cache": value})
    run.build()
    assert run.engine.builds[0].options["nocache"] is False


def test_the_local_runner_cannot_build(tmp_path: Path) -> None:
    run = context(tmp_path, {"image-name": "web"}, engine=False)
    with pytest.raises(StepConfigError) as caught:
        run.build()
    assert str(caught.value) == NEEDS_ENGINE
    assert run.engine.builds == []


@pytest.mark.parametrize("value", ["", "   "])
def test_image_name_is_required(tmp_path: Path, value: str) -> None:
    run = context(tmp_path, {"image-name": value})
    with pytest.raises(StepConfigError, match="internal/docker-build: image-name not set"):
        run.build()


def test_registry_auth_config_is_warned_about(tmp_path: Path) -> None:
    run = context(tmp_path, {"image-name": "web", "registry-auth-config": "{}"})
    run.build()
    assert "registry-auth-config is not supported" in run.log.text
    assert len(run.engine.builds) == 1


@pytest.mark.parametrize("value", ["..", "../other", "svc/../../x", "/etc"])
def test_a_context_outside_the_source_is_refused(tmp_path: Path, value: str) -> None:
    run = context(tmp_path, {"image-name": "web", "context": value})
    with pytest.raises(StepConfigError, match="leaves the source dir"):
        run.build()
    assert run.session.collected == [] and run.engine.builds == []


@pytest.mark.parametrize("value", ["/etc/shadow", "../Dockerfile", "..", "a/../../b"])
def test_a_dockerfile_outside_the_context_is_refused(tmp_path: Path, value: str) -> None:
    run = context(tmp_path, {"image-name": "web", "dockerfile": value})
    with pytest.raises(StepConfigError, match="must be a path inside the context"):
        run.build()
    assert run.engine.builds == []


def test_a_linked_dockerignore_is_refused(tmp_path: Path) -> None:
    (tmp_path / "outside").write_text("*\n")
    run = context(tmp_path, {"image-name": "web"})
    os.symlink(tmp_path / "outside", tmp_path / "source" / ".dockerignore")
    with pytest.raises(StepConfigError, match=r"\.dockerignore .* is a symlink"):
        run.build()
    assert run.engine.builds == []


def test_a_regular_dockerignore_is_fine(tmp_path: Path) -> None:
    run = context(tmp_path, {"image-name": "web"})
    (tmp_path / "source" / ".dockerignore").write_text("*.log\n")
    run.build()
    assert len(run.engine.builds) == 1


@pytest.mark.parametrize("value", ["db", "db:", ":10.0.0.5"])
def test_a_malformed_extra_host_names_the_option(tmp_path: Path, value: str) -> None:
    run = context(tmp_path, {"image-name": "web", "extra-hosts": value})
    with pytest.raises(StepConfigError, match=r"option 'extra-hosts': .* is not of the form"):
        run.build()
