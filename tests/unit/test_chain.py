"""``bot.chain``: a plan's pipelines in order, each from the previous one's artifact; a
pipeline that did not pass skips the rest (with the side it failed on); an abort starts
nothing more; a pipeline that cannot be set up is failed (the user's wercker.yml) or errored
(the bot's side). ``run_pipeline`` is replaced by a recorder: this tests the chain only."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import pytest

import bot.chain
from bot.chain import path_component, run_chain
from bot.errors import InfrastructureError, StepError
from bot.logs import MemoryLog
from bot.models import Result
from bot.pipeline import PipelineRun, Tracer
from bot.plan import Plan, PlannedPipeline
from bot.runners.base import Abort, Timeouts
from bot.settings import RepoSettings, parse_settings
from steps.base import BuildFacts

FACTS = BuildFacts("acme/app", "main", "", "a" * 40, "", "1-1", "http://bot/builds/1", "")
REPO = RepoSettings("acme/app", "file:///nowhere", (), {}, {})


def _planned(i: int, name: str) -> PlannedPipeline:
    return PlannedPipeline(
        name=name, position=i, steps=(), after_steps=(), box=None, base_path=None,
        source_dir=None, timeouts=Timeouts(), deploy_target=None, deploy=i > 0,
        runner_kind="local",
    )  # fmt: skip


def _plan(*names: str) -> Plan:
    pipelines = tuple(_planned(i, name) for i, name in enumerate(names))
    return Plan("wercker.yml", pipelines, "local", (), ())


class Hooks:
    def __init__(self) -> None:
        self.events: list[tuple[str, ...]] = []

    def pipeline_started(self, position: int, name: str) -> Tracer:
        self.events.append(("started", name))
        return cast(Tracer, None)

    def pipeline_finished(self, run: PipelineRun) -> None:
        self.events.append(("finished", run.name, str(run.state)))

    def pipeline_skipped(self, position: int, name: str, state: Result, reason: str) -> None:
        self.events.append(("skipped", name, str(state), reason))


def _chain(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, outcomes: dict[str, Any],
    abort: Abort | None = None,
) -> tuple[list[PipelineRun], Hooks, list[tuple[str, Path]]]:  # fmt: skip
    """Runs a build → test → deploy chain whose pipelines end as ``outcomes`` says (a
    ``Result``, or an exception to raise); returns the runs, the hooks and where each
    pipeline started from."""
    seen: list[tuple[str, Path]] = []

    def fake(planned: PlannedPipeline, *, source: Path, **_: Any) -> PipelineRun:
        seen.append((planned.name, source))
        outcome = outcomes.get(planned.name, Result.PASSED)
        if isinstance(outcome, Exception):
            raise outcome
        if abort is not None and planned.name == "build":
            abort.set("Worker restarted", requeue=True)
        return PipelineRun(planned.name, outcome, str(outcome), artifact=tmp_path / planned.name)

    monkeypatch.setattr(bot.chain, "run_pipeline", fake)
    settings = parse_settings({"data_dir": str(tmp_path / "data")}, {}, base_dir=tmp_path)
    hooks = Hooks()
    runs = run_chain(
        _plan("build", "test", "deploy"), tmp_path / "src", REPO, FACTS,
        runner=cast(Any, None), settings=settings, pusher=cast(Any, None),
        engine_pusher=cast(Any, None), workdir=tmp_path / "work", log=MemoryLog(), hooks=hooks,
        abort=abort,
    )  # fmt: skip
    return runs, hooks, seen


def test_each_pipeline_starts_from_the_previous_ones_artifact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs, hooks, seen = _chain(tmp_path, monkeypatch, {})
    assert [r.state for r in runs] == [Result.PASSED] * 3
    assert seen == [
        ("build", tmp_path / "src"), ("test", tmp_path / "build"), ("deploy", tmp_path / "test")
    ]
    assert hooks.events[0] == ("started", "build")


@pytest.mark.parametrize("state", [Result.FAILED, Result.ERRORED])
def test_a_pipeline_that_did_not_pass_skips_the_rest_on_its_side(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, state: Result
) -> None:
    runs, hooks, seen = _chain(tmp_path, monkeypatch, {"test": state})
    assert [r.name for r in runs] == ["build", "test"] and [s[0] for s in seen] == ["build", "test"]
    assert hooks.events[-1] == ("skipped", "deploy", str(state), "Skipped: 'test' did not pass")


def test_a_pipeline_that_cannot_be_set_up_is_failed_or_errored_by_whose_fault(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs, _, _ = _chain(tmp_path, monkeypatch, {"build": StepError("box x:1 not found")})
    assert (runs[0].state, runs[0].description) == (Result.FAILED, "box x:1 not found")
    runs, _, _ = _chain(tmp_path, monkeypatch, {"build": InfrastructureError("engine gone")})
    assert runs[0].state is Result.ERRORED


def test_an_abort_starts_no_further_pipeline_and_reports_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs, hooks, seen = _chain(tmp_path, monkeypatch, {}, abort=Abort())
    assert [s[0] for s in seen] == ["build"] and len(runs) == 1
    assert not [e for e in hooks.events if e[0] == "skipped"]  # the attempt ends it


@pytest.mark.parametrize("name", ["main", "feature/x", "..", ".", "a" * 300, "ünï", ""])
def test_path_components_stay_one_safe_component(name: str) -> None:
    component = path_component(name)
    assert component and "/" not in component and component.strip(".")
    assert len(component) <= 100 and component.isascii()
    assert path_component(name) == component  # stable: the cache is found again
