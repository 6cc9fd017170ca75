"""``bot.wercker.nodes``: the file and its pipelines: unusable files, top-level keys and
settings, timeouts, pipeline keys and deploy targets, services per pipeline, and top-level
keys that only hold shared YAML anchors."""

from __future__ import annotations

import pytest

from bot.wercker.nodes import read
from bot.wercker.parse import load_text
from tests.unit.wercker.helpers import load, loaded, only


@pytest.mark.parametrize(
    ("text", "line", "col", "needle"),
    [
        ("", 1, 1, "wercker.yml is empty"),
        ("# only a comment\n", 1, 1, "wercker.yml is empty"),
        ("token = $TOKEN\n", 1, 1, "must be a mapping"),
        ("build:\n  steps:\n    - a\n\n    -script:\n      code: x\n", 5, 5, "invalid YAML"),
        ("build:\n  steps:\n    - a\n\t- b\n", 4, 1, "invalid YAML"),
        ("build:\n  steps:\n    - a\n      cwd: x\n", 4, 10, "mapping values"),
        ("a: [1\n", 2, 1, "invalid YAML"),
        ("a: 1\n---\nb: 2\n", 2, 1, "invalid YAML"),
    ],
)
def test_unusable_files_give_one_located_error(text: str, line: int, col: int,
                                               needle: str) -> None:
    wf, problems = load_text(text, "wercker.yml")
    assert wf is None
    (problem,) = problems
    assert problem.severity == "error" and needle in problem.message
    assert (problem.loc.line, problem.loc.col) == (line, col), problem.format()


def test_bare_list_pipeline_is_accepted_with_a_warning() -> None:
    wf, problems = loaded(
        """
        build:
          - script:
              code: make
        """
    )
    assert [s.id for s in wf.pipelines["build"].steps] == ["script"]
    assert only(problems, "bare list").loc.line == 2


def test_deploy_targets_and_pipeline_keys() -> None:
    wf, problems = loaded(
        """
        deploy:
          base-path: /go/src/x/
          docker: true
          box: alpine
          steps:
            - script: {code: a}
          after-steps:
            - script: {code: b}
          ecs:
            - script: {code: c}
        """
    )
    p = wf.pipelines["deploy"]
    assert p.base_path == "/go/src/x" and p.docker is True and p.box and p.box.id == "alpine"
    assert [s.options["code"] for s in p.targets["ecs"]] == ["c"]
    assert [s.options["code"] for s in p.after_steps] == ["b"]
    assert problems == []


def test_pipeline_key_that_is_not_a_list_is_an_error() -> None:
    _, problems = loaded(
        """
        build:
          steps: []
          extra: nope
        """
    )
    assert only(problems, "'extra' in pipeline 'build' must be a list").severity == "error"


def test_top_level_keys_inside_a_pipeline() -> None:
    _, problems = loaded(
        """
        build:
          source-dir: src
          no-response-timeout: 10
          steps:
            - script: {code: a}
        """
    )
    assert only(problems, "'source-dir' is a top-level key").severity == "error"
    assert only(problems, "'no-response-timeout' is a top-level key").severity == "warning"


def test_top_level_settings() -> None:
    wf, problems = loaded(
        """
        box:
          id: golang
          tag: "1.10"
          env:
            goPath: /go
          username: $U
        services:
          - mongo
          - id: rabbitmq:3
            env: {x: 1}
        source-dir: src
        command-timeout: 90
        no-response-timeout: 0
        workflows: []
        ports: [8080]
        image: foo
        build:
          steps:
            - script: {code: a}
        """
    )
    assert wf.box and (wf.box.id, wf.box.options, wf.box.env) == (
        "golang", {"tag": "1.10", "username": "$U"}, {"GOPATH": "/go"})
    assert [s.id for s in wf.services] == ["mongo", "rabbitmq:3"]
    assert wf.services[1].env == {"X": "1"}
    assert wf.source_dir == "src"
    assert (wf.command_timeout, wf.no_response_timeout) == (60, None)
    assert list(wf.pipelines) == ["build"]
    text = " | ".join(p.format() for p in problems)
    assert "capped at 60" in text and "must be a whole number" in text
    assert "'workflows' is not used" in text
    assert "'ports' is a step or box option" in text and "'image'" in text
    assert all(p.severity == "warning" for p in problems)


def test_scalar_top_level_key_is_ignored() -> None:
    wf, problems = loaded("build:\n  steps: [{script: {code: a}}]\nstray: 3\n")
    assert list(wf.pipelines) == ["build"]
    assert only(problems, "'stray' is not a pipeline").severity == "warning"


def test_no_problem_echoes_a_secret_value() -> None:
    _, problems = load("password: hunter2-secret\nbuild:\n  steps: [{script: {code: a}}]\n")
    assert problems and all("hunter2" not in p.format() for p in problems)


def test_pipeline_services_replace_and_empty_list_disables() -> None:
    wf, _ = loaded(
        """
        services: [mongo]
        build:
          services: []
          steps: [{script: {code: a}}]
        deploy:
          steps: [{script: {code: a}}]
        """
    )
    assert [s.id for s in wf.services] == ["mongo"]
    assert wf.pipelines["build"].services == [] and wf.pipelines["deploy"].services is None


# -- YAML anchors held at the top level (issue 10) -------------------------------------------


@pytest.mark.parametrize(
    "holder",
    [
        ".docker-credentials: &creds {username: $U, password: $P}\n",
        "shared:\n  creds: &creds {username: $U, password: $P}\n",
        ".steps: &steps\n  - script: {code: a}\n",
        ".image: &image acme/box\n",
        ".box: &creds\n  box: {id: acme/box}\n  username: $U\n  password: $P\n",
    ],
)
def test_a_top_level_key_holding_an_anchor_is_ignored_silently(holder: str) -> None:
    text = holder + "build:\n  steps:\n    - internal/docker-push:\n        repository: a/b\n"
    wf, problems = loaded(text)
    assert list(wf.pipelines) == ["build"]
    assert problems == [], [p.format() for p in problems]


def test_anchored_values_are_used_through_their_aliases() -> None:
    wf, problems = loaded(
        ".creds: &creds {username: $U, password: $P}\n"
        "build:\n  steps:\n    - internal/docker-push:\n        <<: *creds\n"
        "        repository: a/b\n"
    )
    assert problems == []
    assert wf.pipelines["build"].steps[0].options == {
        "username": "$U", "password": "$P", "repository": "a/b"}


def test_an_anchored_pipeline_shaped_mapping_stays_a_pipeline() -> None:
    wf, _ = loaded(
        "base: &base\n  steps:\n    - script: {code: a}\nbuild:\n  <<: *base\n"
        "targets: &t\n  prod:\n    - script: {code: p}\n"
        "deploy:\n  box: &box acme/box\n  prod:\n    - script: {code: p}\n"
    )
    assert list(wf.pipelines) == ["base", "build", "targets", "deploy"]
    assert list(wf.pipelines["deploy"].targets) == ["prod"]
    assert [s.options["code"] for s in wf.pipelines["build"].steps] == ["a"]
    assert list(wf.pipelines["targets"].targets) == ["prod"]


def test_an_unanchored_non_pipeline_mapping_is_still_reported() -> None:
    # Without an anchor it is more likely a broken pipeline than a holder of shared YAML.
    wf, problems = loaded("notes: {username: u}\nbuild:\n  steps: [{script: {code: a}}]\n")
    assert "notes" in wf.pipelines
    assert only(problems, "'username' in pipeline 'notes'").severity == "error"


# -- read() called directly: the structure alone, without lint --------------------------------


def test_read_gives_only_structural_problems() -> None:
    # An unknown push option is lint (checks), not structure: read() keeps quiet about it.
    text = "build:\n  steps:\n    - internal/docker-push: {repositry: a}\n"
    wf, problems = read(text, "wercker.yml")
    assert wf is not None and problems == []
    assert wf.pipelines["build"].steps[0].options == {"repositry": "a"}


@pytest.mark.parametrize(
    ("base_path", "read_as", "problem"),
    [
        ("/go/src/x/", "/go/src/x", None),
        ("/", "/", None),
        ("src/x", None, "'base-path' must be an absolute path, not 'src/x'"),
        ("''", None, None),
    ],
)
def test_base_path_is_absolute_without_a_trailing_slash(
    base_path: str, read_as: str | None, problem: str | None
) -> None:
    wf, problems = read(f"build:\n  base-path: {base_path}\n  steps: [a]\n", "wercker.yml")
    assert wf is not None and wf.pipelines["build"].base_path == read_as
    assert [p.message for p in problems] == ([] if problem is None else [problem])


@pytest.mark.parametrize(("written", "docker"), [("true", True), ("yes", True), ("false", False)])
def test_docker_is_a_boolean(written: str, docker: bool) -> None:
    wf, problems = read(f"build:\n  docker: {written}\n  steps: [a]\n", "wercker.yml")
    assert wf is not None and wf.pipelines["build"].docker is docker and problems == []


def test_docker_that_is_not_a_boolean_warns_and_is_off() -> None:
    wf, problems = read("build:\n  docker: maybe\n  steps: [a]\n", "wercker.yml")
    assert wf is not None and wf.pipelines["build"].docker is False
    assert [p.message for p in problems] == ["'docker' must be true or false, not 'maybe'"]


def test_empty_pipelines_and_targets_warn() -> None:
    wf, problems = read("build:\ndeploy:\n  prod:\ntest:\n  box: alpine\n", "wercker.yml")
    assert wf is not None and list(wf.pipelines) == ["deploy", "test"]
    assert wf.pipelines["deploy"].targets == {"prod": []}
    assert [(p.loc.line, p.message) for p in problems] == [
        (1, "pipeline 'build' is empty; it is ignored"),
        (3, "deploy target 'prod' in pipeline 'deploy' is empty"),
        (4, "pipeline 'test' has no steps"),
    ]


@pytest.mark.parametrize(
    ("written", "minutes", "warned"),
    [("25", 25, False), ("60", 60, False), ("61", 60, True), ("0", None, True), ("x", None, True)],
)
def test_command_timeout_is_whole_minutes_capped_at_an_hour(
    written: str, minutes: int | None, warned: bool
) -> None:
    wf, problems = read(f"command-timeout: {written}\nbuild:\n  steps: [a]\n", "wercker.yml")
    assert wf is not None and wf.command_timeout == minutes
    assert bool(problems) is warned
