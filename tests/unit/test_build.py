"""Attempt orchestration: what one attempt decides and records.

Most tests run ``Attempt`` against the in-memory store (``tests/fakes/store.py``), the real
reporter, a real git remote and the ``local-unsafe`` runner (or a fake runner where the test
needs a runner that crashes or floods the log): each takes milliseconds, not a server."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

import bot.chain
from bot.build import Attempt
from bot.dispatch.embedded import EmbeddedDispatcher
from bot.errors import StoreUnavailable
from bot.images import ImageRef
from bot.logs import Log
from bot.models import Result
from bot.outbox import StatusDelivery
from bot.reporter import LOG_INCOMPLETE, NO_WERCKER_YML, Reporter
from bot.runners.base import GuestPaths, ScriptResult, Timeouts, Workspace
from bot.runners.select import RunnerChooser
from bot.services import Services
from bot.settings import Settings, parse_settings
from bot.wiring import build_credentials, build_engine_pusher, build_pusher
from tests.fakes.forge import FakeForge
from tests.fakes.store import FakeStore
from tests.harness.gitrepo import Remote, make_remote
from tests.integration.test_scenarios import run_scenario

OK = "build:\n  steps:\n    - script:\n        code: 'true'\n"


def _settings(tmp_path: Path, remote: Remote, repo: dict[str, object] | None = None) -> Settings:
    return parse_settings(
        {
            "data_dir": str(tmp_path / "data"),
            "base_url": "http://bot.test",
            "github": {"webhook_secret": "s" * 16, "status_context": "wb"},
            "runner": {"kind": "local-unsafe"},
            "repos": {"acme/app": {"clone_url": remote.url, **(repo or {})}},
        },
        {},
        base_dir=tmp_path,
    )


def _services(
    settings: Settings, store: FakeStore, runners: Callable[[], object] | None = None
) -> Services:
    forge = FakeForge()
    return Services(
        settings=settings,
        store=store,  # type: ignore[arg-type]  # an attempt uses only the Protocols it keeps
        pusher=build_pusher(settings, build_credentials(settings)),
        engine_pusher=build_engine_pusher(settings, build_credentials(settings)),
        reporter=store.listener,  # type: ignore[arg-type]
        forge=forge,
        status_delivery=StatusDelivery(store, forge),  # type: ignore[arg-type]  # never run here
        dispatcher=EmbeddedDispatcher(store),  # type: ignore[arg-type]
        runners=runners or (lambda: RunnerChooser(settings)),  # type: ignore[arg-type]
    )


class World:
    """A git remote, the fake store with the real reporter, and the bot's settings."""

    def __init__(self, tmp_path: Path, repo: dict[str, object] | None = None) -> None:
        self.remote = make_remote(tmp_path / "git")
        self.store = FakeStore(Reporter("wb", "http://bot.test"))
        self.settings = _settings(tmp_path, self.remote, repo)
        self.runners: Callable[[], object] | None = None

    def commit(self, files: dict[str, str]) -> str:
        return self.remote.commit(files)

    def run(
        self, sha: str, pipelines: Sequence[str] = ("build", "deploy"), **push: object
    ) -> Result:
        """Pushes ``sha`` and runs the attempt the worker would claim next."""
        self.store.push(sha, pipelines=pipelines, **push)  # type: ignore[arg-type]
        claim = self.store.claim_next("test")
        assert claim is not None
        return Attempt(claim, _services(self.settings, self.store, self.runners)).run()

    def statuses(self, sha: str, repo: str = "acme/app") -> dict[str, str]:
        return self.store.final_statuses(repo, sha)


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path)


def _final(statuses: dict[str, str]) -> bool:
    return all(not s.startswith("pending") for s in statuses.values())


def test_a_repository_gone_from_the_config_errors(world: World) -> None:
    sha = world.commit({"wercker.yml": OK})
    assert world.run(sha, repo="gone/app") is Result.ERRORED
    statuses = world.statuses(sha, "gone/app")
    expected = "error: gone/app is no longer in the bot's config"
    assert statuses == {"build": expected, "deploy": expected}
    attempt = world.store.attempts[max(world.store.attempts)]
    assert attempt.state is Result.ERRORED
    assert "no longer in the bot's config" in attempt.description


def test_no_wercker_yml_passes_and_resolves_every_planned_context(world: World) -> None:
    sha = world.commit({"index.html": "<h1>docs</h1>"})
    assert world.run(sha) is Result.PASSED
    expected = f"success: {NO_WERCKER_YML}"
    assert world.statuses(sha) == {"build": expected, "deploy": expected}
    build_id = max(a.build.id for a in world.store.attempts.values())
    assert world.store.attempt_of(build_id).description == NO_WERCKER_YML
    assert world.store.pipelines == {}  # nothing ran, no runner was asked for


def test_a_blocking_lint_error_errors_naming_the_line(world: World) -> None:
    sha = world.commit(
        # Issue 10: npm-install is built in now; an id nothing serves still stops the plan.
        {"wercker.yml": "build:\n  steps:\n    - acme/nothing\n    - script:\n        code: x\n"}
    )
    assert world.run(sha) is Result.ERRORED
    statuses = world.statuses(sha)
    assert statuses["build"].startswith("error: wercker.yml line 3: "), statuses
    assert statuses["deploy"] == statuses["build"]
    assert world.store.pipelines == {}  # decided at compile time: nothing started


def test_a_descendant_already_built_cancels_the_older_commit(world: World) -> None:
    older = world.commit({"wercker.yml": OK})
    newer = world.commit({"more.txt": "x"})
    newer_build = world.store.push(newer, pipelines=("build",))
    world.store.built(newer_build)
    assert world.run(older, pipelines=("build",)) is Result.CANCELED
    assert world.statuses(older) == {"build": f"error: Superseded by {newer[:7]}"}


def test_a_failed_first_pipeline_skips_the_next_with_a_failure_status(world: World) -> None:
    yml = "build:\n  steps:\n    - script:\n        code: exit 3\n" + OK.replace("build", "deploy")
    sha = world.commit({"wercker.yml": yml})
    assert world.run(sha) is Result.FAILED
    statuses = world.statuses(sha)
    assert statuses["build"].startswith("failure: "), statuses
    assert statuses["deploy"] == "failure: Skipped: 'build' did not pass"
    attempt_id = max(world.store.attempts)
    rows = [(p.name, p.state) for p in world.store.pipelines_of(attempt_id)]
    assert rows == [("build", Result.FAILED), ("deploy", Result.SKIPPED)]
    assert world.store.attempts[attempt_id].runner == "local-unsafe"


class _Session:
    """A session on the host that runs no shell: ``script`` is a Python callable."""

    kind = "fake"
    can_commit = False

    def __init__(self, workspace: Workspace, script: Callable[[Log], int]) -> None:
        self.workspace = workspace
        self.script = script
        self.paths = GuestPaths(
            str(workspace.root), str(workspace.source), str(workspace.source),
            str(workspace.output), str(workspace.cache),
        )  # fmt: skip

    def run_script(
        self, code: str, *, env: dict[str, str], secrets: dict[str, str], cwd: str,
        timeouts: Timeouts, log: Log,
    ) -> ScriptResult:  # fmt: skip
        return ScriptResult(self.script(log))

    def collect(self, guest_dir: str) -> Path:
        return Path(guest_dir)

    def put_dir(self, source: Path, name: str) -> str:
        raise AssertionError("no step package in these tests")

    def restart(self, log: Log) -> None:
        pass

    def close(self) -> None:
        pass


class _Runner:
    """A runner whose sessions run ``script``; ``open`` raises ``crash`` when given."""

    kind = "fake"

    def __init__(
        self, script: Callable[[Log], int] = lambda log: 0, crash: Exception | None = None
    ) -> None:
        self.script = script
        self.crash = crash

    def open(
        self, box: ImageRef | None, box_env: dict[str, str], workspace: Workspace,
        base_path: str | None, log: Log,
    ) -> _Session:  # fmt: skip
        if self.crash is not None:
            raise self.crash
        return _Session(workspace, self.script)


class _Chooser:
    """``RunnerChooser``'s two moves, answering with one fake runner."""

    def __init__(self, runner: _Runner) -> None:
        self._runner = runner

    def kind_for(self, boxless: Sequence[str], log: Log) -> str:
        return self._runner.kind

    def runner(self, kind: str) -> _Runner:
        assert kind == self._runner.kind
        return self._runner


def test_an_internal_crash_errors_and_resolves_every_planned_context(world: World) -> None:
    world.runners = lambda: _Chooser(_Runner(crash=KeyError("boom")))
    sha = world.commit({"wercker.yml": OK + OK.replace("build", "deploy")})
    assert world.run(sha) is Result.ERRORED
    statuses = world.statuses(sha)
    assert set(statuses) == {"build", "deploy"} and _final(statuses), statuses
    for status in statuses.values():
        assert status.startswith("error: internal error: KeyError"), statuses
    attempt_id = max(world.store.attempts)
    assert world.store.attempts[attempt_id].state is Result.ERRORED
    assert [p.state for p in world.store.pipelines_of(attempt_id)] == [Result.ERRORED]


def test_a_log_the_store_lost_part_of_says_so(world: World) -> None:
    store = world.store

    def flood(log: Log) -> int:
        # The store fails while the step prints more than the log may hold in memory:
        # part of the output is lost. Then the store recovers.
        store.fail_log_writes = True
        chunk = "x" * 65535 + "\n"
        for _ in range(80):  # 5 MB: more than the 4 MB the log buffers
            log.output(chunk)
        store.fail_log_writes = False
        return 0

    world.runners = lambda: _Chooser(_Runner(flood))
    sha = world.commit({"wercker.yml": OK})
    assert world.run(sha, pipelines=("build",)) is Result.PASSED
    status = world.statuses(sha)["build"]
    assert status.startswith("success: ") and status.endswith(LOG_INCOMPLETE), status
    attempt_id = max(store.attempts)
    assert store.attempts[attempt_id].description.endswith(LOG_INCOMPLETE)
    assert "bytes of log lost: the store could not write" in store.log_text(attempt_id)


def test_the_fake_store_fails_log_writes_like_a_full_disk() -> None:
    store = FakeStore(Reporter("wb", "http://bot.test"))
    store.push("a" * 40)
    claim = store.claim_next("w")
    assert claim is not None
    store.fail_log_writes = True
    with pytest.raises(StoreUnavailable, match="disk is full"):
        store.append_log(claim.attempt_id, "text")


def test_a_crash_in_deploy_keeps_builds_success(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = bot.chain.run_pipeline

    def flaky(spec, *args, **kwargs):  # type: ignore[no-untyped-def]
        if spec.name == "deploy":
            raise OSError("disk full")
        return real(spec, *args, **kwargs)

    monkeypatch.setattr(bot.chain, "run_pipeline", flaky)
    yml = "build:\n  steps:\n    - script:\n        code: 'true'\n"
    yml += "deploy:\n  steps:\n    - script:\n        code: 'true'\n"
    got = run_scenario(tmp_path, {"wercker.yml": yml})
    assert got["result"] == "errored"
    assert got["statuses"]["build"].startswith("success")
    assert got["statuses"]["deploy"].startswith("error: internal error: OSError")
    states = [p.state for p in got["detail"].attempts[0].pipelines]
    assert "running" not in states
