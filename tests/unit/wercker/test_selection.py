"""Pipeline selection, deploy targets, timeouts (behaviour §4)."""

from __future__ import annotations

import pytest

from bot.errors import WerckerFileError
from bot.settings import PipelineChoice
from bot.wercker.model import Problem
from bot.wercker.selection import blocking_problems, select_pipelines, steps_for, timeouts_for
from tests.unit.wercker.helpers import loaded

FILE = """
test:
  steps: [{script: {code: t}}]
push-release:
  steps: [{script: {code: p}}]
deploy:
  steps: [{script: {code: s}}]
  ecs: [{script: {code: e}}]
  after-steps: [{script: {code: a}}]
"""


def names(pipelines: list) -> list[str]:
    return [p.name for p in pipelines]


def test_default_choice_takes_what_exists() -> None:
    wf, _ = loaded(FILE)
    choices = [PipelineChoice("build"), PipelineChoice("deploy")]
    assert names(select_pipelines(wf, choices, "main")) == ["deploy"]


def test_branch_globs_and_order() -> None:
    wf, _ = loaded(FILE)
    choices = [PipelineChoice("test"), PipelineChoice("push-release", ("main", "release/*"))]
    assert names(select_pipelines(wf, choices, "release/1.2")) == ["test", "push-release"]
    assert names(select_pipelines(wf, choices, "feature/x")) == ["test"]


def test_none_defined_names_what_is() -> None:
    wf, _ = loaded("test:\n  steps: [{script: {code: t}}]\npush-release:\n  steps: []\n")
    with pytest.raises(WerckerFileError) as err:
        select_pipelines(wf, [PipelineChoice("build"), PipelineChoice("deploy")], "main")
    assert str(err.value) == (
        "none of build, deploy is defined in wercker.yml; it defines: test, push-release"
    )


def test_steps_for_targets() -> None:
    wf, _ = loaded(FILE)
    deploy = wf.pipelines["deploy"]
    problems: list[Problem] = []
    assert [s.options["code"] for s in steps_for(deploy, "ecs", problems)] == ["e"]
    assert [s.options["code"] for s in steps_for(deploy, None, problems)] == ["s"]
    assert problems == []
    assert [s.options["code"] for s in steps_for(deploy, "k8s", problems)] == ["s"]
    assert "no deploy target 'k8s'" in problems[0].message
    # a pipeline without targets ignores the repo-wide setting silently
    assert len(steps_for(wf.pipelines["test"], "k8s", problems)) == 1 and len(problems) == 1


def test_only_targets_and_none_chosen_warns() -> None:
    wf, _ = loaded("deploy:\n  hub: [{script: {code: h}}]\n")
    problems: list[Problem] = []
    assert steps_for(wf.pipelines["deploy"], None, problems) == []
    assert "only deploy targets (hub)" in problems[0].message


def test_timeouts() -> None:
    wf, _ = loaded(FILE)
    assert timeouts_for(wf) == (25 * 60, 5 * 60)
    wf, _ = loaded("command-timeout: 90\nno-response-timeout: 10\n" + FILE)
    assert timeouts_for(wf) == (60 * 60, 10 * 60)


def test_blocking_problems_ignore_pipelines_not_run() -> None:
    wf, problems = loaded(
        # Issue 10: internal/watch (skipped) and npm-install (a step package) no longer block.
        "dev:\n  steps: [internal/store-container]\nbuild:\n  steps: [internal/publish-step]\n"
        "box: {id: x, aws-region: r}\n"
    )
    dev, build = wf.pipelines["dev"], wf.pipelines["build"]
    lines = sorted(p.loc.line for p in blocking_problems(problems, [build]))
    assert lines == [4, 5]
    assert sorted(p.loc.line for p in blocking_problems(problems, [dev])) == [2, 5]
