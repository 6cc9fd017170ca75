"""The parser: step forms, scalar text, pipelines, boxes, timeouts, YAML errors, discovery."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.wercker.parse import MAX_FILE_BYTES, find_file, load_dir, load_text
from tests.unit.wercker.helpers import load, loaded, messages, only

PUSH = """\
build:
  steps:
    - internal/docker-push:
        repository: acme/app
        {option}
"""


def push_options(option: str) -> dict[str, str]:
    wf, _ = loaded(PUSH.format(option=option))
    return wf.pipelines["build"].steps[0].options


@pytest.mark.parametrize(
    ("option", "expected"),
    [
        ("tag: 1.10", ("tag", "1.10")),
        ("ports: 8080", ("ports", "8080")),
        ("disable-sync: true", ("disable-sync", "true")),
        ("disable-sync: True", ("disable-sync", "true")),
        ("disable-sync: yes", ("disable-sync", "true")),
        ("tag: yes", ("tag", "yes")),
        ("tag: 2018-01-01", ("tag", "2018-01-01")),
        ("ports: 3000:30", ("ports", "3000:30")),
        ("user: 65534", ("user", "65534")),
        ("tag: 010", ("tag", "010")),
        ("tag: 1e3", ("tag", "1e3")),
        ("tag: '1.10'", ("tag", "1.10")),
        ("tag: [a, b, 1.0]", ("tag", "a,b,1.0")),
        ("cmd: [nginx, -g, 'daemon off;']", ("cmd", "nginx -g 'daemon off;'")),
        ("env: {FOO: bar baz, N: 1}", ("env", "'FOO=bar baz' N=1")),
    ],
)
def test_scalars_keep_their_written_text(option: str, expected: tuple[str, str]) -> None:
    key, value = expected
    assert push_options(option)[key] == value


def test_null_option_is_empty_with_a_warning() -> None:
    wf, problems = loaded(PUSH.format(option="tag:"))
    assert wf.pipelines["build"].steps[0].options["tag"] == ""
    assert only(problems, "option 'tag' has no value").loc.line == 5


def test_three_step_forms() -> None:
    wf, problems = loaded(
        """
        build:
          steps:
            - script:
                name: nested
                code: echo 1
            - script:
              name: siblings
              code: echo 2
            - internal/docker-push:
              repository: acme/app
              tag: v1
        """
    )
    first, second, push = wf.pipelines["build"].steps
    assert (first.id, first.name, first.options) == ("script", "nested", {"code": "echo 1"})
    assert (second.id, second.name, second.options) == ("script", "siblings", {"code": "echo 2"})
    assert push.options == {"repository": "acme/app", "tag": "v1"}
    assert push.option_locs["tag"].line == 12  # line 1 is the blank after """
    assert problems == []


def test_string_step_and_registry_ids() -> None:
    wf, _ = loaded(
        """
        build:
          steps:
            - npm-install
            - steven-rho/aws-ecs-task-definition@0.0.1:
                name: td
        """
    )
    steps = wf.pipelines["build"].steps
    assert [s.id for s in steps] == ["npm-install", "steven-rho/aws-ecs-task-definition@0.0.1"]
    assert steps[1].name == "td"
    assert steps[0].loc.line == 4 and steps[0].loc.col == 7


def test_inline_text_on_sibling_step_is_the_name() -> None:
    wf, problems = loaded(
        """
        build:
          steps:
            - script: Install Dep
              code: dep ensure
        """
    )
    step = wf.pipelines["build"].steps[0]
    assert (step.name, step.options) == ("Install Dep", {"code": "dep ensure"})
    assert only(problems, "read as the step's name").severity == "warning"


def test_empty_script_is_an_error() -> None:
    wf, problems = loaded(
        """
        build:
          steps:
            - script:
        """
    )
    problem = only(problems, "step script is empty")
    assert (problem.severity, problem.loc.line, problem.pipeline) == ("error", 4, "build")
    assert wf.pipelines["build"].steps == []


def test_name_cwd_checkpoint_leave_the_options() -> None:
    wf, problems = loaded(
        """
        build:
          steps:
            - script:
                name: unit
                cwd: sub/dir
                checkpoint: x
                code: make
            - internal/docker-run:
                name: db
                image: postgres
        """
    )
    script, run = wf.pipelines["build"].steps
    assert (script.name, script.cwd, script.options) == ("unit", "sub/dir", {"code": "make"})
    assert "checkpoint" in messages(problems, "warning")[0]
    assert run.options["name"] == "db"  # the container name for docker-run


def test_aliases_port_tags_image() -> None:
    wf, problems = loaded(
        """
        build:
          steps:
            - internal/docker-push:
                repository: acme/app
                port: 80/tcp
                tags: anytag
                image: built
        """
    )
    options = wf.pipelines["build"].steps[0].options
    assert options == {"repository": "acme/app", "ports": "80/tcp", "tag": "anytag",
                       "image-name": "built"}
    assert sorted(p.loc.line for p in problems if "is read as" in p.message) == [6, 7, 8]


def test_alias_loses_to_the_real_option() -> None:
    wf, problems = loaded(PUSH.format(option="port: 1\n        ports: 2"))
    assert wf.pipelines["build"].steps[0].options["ports"] == "2"
    assert only(problems, "'port' is ignored").severity == "warning"


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


def test_duplicate_key_warns_and_last_wins() -> None:
    wf, problems = loaded(
        """
        build:
          steps:
            - script: {code: a}
          steps:
            - script: {code: b}
        """
    )
    assert wf.pipelines["build"].steps[0].options["code"] == "b"
    assert only(problems, "duplicate key 'steps'").loc.line == 5


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


def test_yaml_error_hints() -> None:
    _, tab = load_text("build:\n  steps:\n    - a\n\t- b\n", "wercker.yml")
    _, dash = load_text("build:\n  steps:\n    - a\n    -script:\n      code: x\n", "wercker.yml")
    assert tab[0].hint and "tabs" in tab[0].hint
    assert dash[0].hint and "space after '-'" in dash[0].hint


def test_no_problem_echoes_a_secret_value() -> None:
    _, problems = load("password: hunter2-secret\nbuild:\n  steps: [{script: {code: a}}]\n")
    assert problems and all("hunter2" not in p.format() for p in problems)


def test_find_file_prefers_wercker_yml(tmp_path: Path) -> None:
    assert find_file(tmp_path) is None
    (tmp_path / "Wercker.yml").write_text("build: {}\n")
    (tmp_path / "wercker.yaml").write_text("build: {}\n")
    assert find_file(tmp_path) is None  # neither Wercker.yml nor wercker.yaml (as WCLI)
    (tmp_path / ".wercker.yml").write_text("build: {}\n")
    assert find_file(tmp_path) == tmp_path / ".wercker.yml"
    (tmp_path / "wercker.yml").write_text("build: {}\n")
    assert find_file(tmp_path) == tmp_path / "wercker.yml"


def test_load_dir(tmp_path: Path) -> None:
    assert load_dir(tmp_path) == (None, [], None)
    (tmp_path / ".wercker.yml").write_text("build:\n  steps:\n    - script: {code: a}\n")
    wf, problems, path = load_dir(tmp_path)
    assert wf is not None and wf.path == ".wercker.yml" and path == tmp_path / ".wercker.yml"
    assert problems == []


def test_load_dir_reports_bad_bytes(tmp_path: Path) -> None:
    (tmp_path / "wercker.yml").write_bytes(b"build: \xff\n")
    wf, problems, _ = load_dir(tmp_path)
    assert wf is None and "not UTF-8" in problems[0].message


def test_merge_keys_override_silently() -> None:
    wf, problems = loaded(
        """
        .defaults: &defaults
          box: golang
          steps:
            - script: {code: base}
        build:
          <<: *defaults
          steps:
            - script: {code: own}
        deploy:
          <<: *defaults
        """
    )
    build, deploy = wf.pipelines["build"], wf.pipelines["deploy"]
    assert build.box and build.box.id == "golang"
    assert [s.options["code"] for s in build.steps] == ["own"]
    assert [s.options["code"] for s in deploy.steps] == ["base"]
    assert problems == []


def test_bad_characters_are_located() -> None:
    wf, problems = load_text("build:\n  steps:\n    - script: {code: \"a\x01\"}\n", "wercker.yml")
    assert wf is None
    assert (problems[0].loc.line, problems[0].loc.col) == (3, 24)


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


@pytest.mark.parametrize("name", ["A=B", "A\nB", "9LIVES", "", "FOO BAR", "ÄPFEL"])
def test_box_env_names_must_be_variable_names(name: str) -> None:
    text = f"box:\n  id: alpine\n  env:\n    {json.dumps(name)}: x\n    ok_1: y\n"
    text += "build:\n  steps: [{script: {code: a}}]\n"
    wf, problems = load_text(text, "wercker.yml")
    assert wf is not None and wf.box is not None
    assert wf.box.env == {"OK_1": "y"}  # the bad name never reaches a runner
    problem = only(problems, "box env name")
    assert (problem.severity, problem.loc.line, problem.loc.col) == ("error", 4, 5)
    assert problem.message == (
        f"box env name {name!r} is not a valid environment variable name: use letters, "
        "digits and _ and do not start with a digit"
    )
    assert "\n" not in problem.format()


def test_service_env_names_are_checked_too() -> None:
    _, problems = load("services:\n  - id: redis\n    env: {'X=1': y}\nbuild: {steps: [a]}\n")
    assert only(problems, "box env name 'X=1'").loc.line == 3


def test_a_file_over_the_limit_is_refused_unread(tmp_path: Path) -> None:
    (tmp_path / "wercker.yml").write_bytes(b"build: {steps: [a]}\n" + b"#" * MAX_FILE_BYTES)
    wf, problems, path = load_dir(tmp_path)
    assert wf is None and path == tmp_path / "wercker.yml"
    assert [p.format() for p in problems] == [
        "wercker.yml:1:1: error: wercker.yml is 1,000,020 bytes; the limit is 1,000,000 bytes; "
        "move long scripts into files in the repository and run them from a step"
    ]
    (tmp_path / "wercker.yml").write_bytes(b"build: {steps: [a]}\n" + b"#" * 1_500_000)
    assert load_dir(tmp_path)[1][0].message == "wercker.yml is 1.5 MB; the limit is 1 MB"
    # At the limit exactly, the file is read.
    exact = b"build: {steps: [{script: {code: a}}]}\n"
    (tmp_path / "wercker.yml").write_bytes(exact + b"#" * (MAX_FILE_BYTES - len(exact)))
    wf, problems, _ = load_dir(tmp_path)
    assert wf is not None and problems == []


def test_load_text_has_the_same_limit() -> None:
    wf, problems = load_text("#" * (MAX_FILE_BYTES + 1), "wercker.yml")
    assert wf is None and problems[0].message.startswith("wercker.yml is 1,000,001 bytes")


@pytest.mark.parametrize(
    "text",
    [
        "&a [*a]",
        "a: &a [*a]\nbuild: {steps: *a}\n",
        "x: &m {<<: *m}\nbuild: {steps: [a]}\n",
    ],
)
def test_an_alias_inside_its_own_anchor_is_a_located_error(text: str) -> None:
    wf, problems = load_text(text, "wercker.yml")
    assert wf is None
    assert len(problems) == 1 and "used inside the node its anchor" in problems[0].message


def test_aliases_that_expand_past_the_budget_are_refused() -> None:
    laughs = ["l0: &l0 ['" + "x" * 100 + "']"]
    for i in range(1, 8):  # nested lists of ten aliases each: 10**7 copies of the text
        laughs.append(f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 10) + "]")
    wf, problems = load_text("\n".join(laughs) + "\nbuild: {steps: [a]}\n", "wercker.yml")
    assert wf is None and "too big once its aliases" in problems[0].message
    # Ordinary reuse stays well inside it.
    wf, problems = load_text(
        "base: &b {steps: [{script: {code: a}}]}\nbuild: *b\ndeploy: *b\n", "wercker.yml"
    )
    assert wf is not None and not [p for p in problems if p.severity == "error"]


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


# -- "mapping values are not allowed here": the hint says what is on that line ---------------


@pytest.mark.parametrize(
    ("text", "line", "hint"),
    [
        ("build:\n  steps:\n    - bundle-install\n      cwd: frontend/\n", 4,
         "'- bundle-install' above is a plain list item, so 'cwd:' cannot be indented under "
         "it; to give a step options write '- bundle-install:' and indent its options under it"),
        ("build:\n  steps:\n    - script:\n        name: echo a: b\n        code: x\n", 4,
         "the value after 'name:' contains ': ', which YAML reads as another key; quote the "
         "whole value (or use a block scalar '|'), or put a nested key on its own line, "
         "indented"),
        ("build: steps: x\n", 1, "the value after 'build:' contains ': '"),
        ("build:\n  steps:\n    - script:\n        name: x\n          code: y\n", 5,
         "this line is indented deeper than 'name:' above, which already has a value on its "
         "line; line this key up with 'name:', or write 'name:' alone to nest it"),
        ("box: golang\n  build:\n    steps: []\n", 2,
         "this line is indented deeper than 'box:' above"),
    ],
)
def test_mapping_values_hint_matches_its_line(text: str, line: int, hint: str) -> None:
    wf, problems = load_text(text, "wercker.yml")
    assert wf is None
    (problem,) = problems
    assert "mapping values are not allowed" in problem.message
    assert problem.loc.line == line
    assert problem.hint and problem.hint.startswith(hint), problem.hint


def test_mapping_values_hint_never_echoes_a_value() -> None:
    _, (problem,) = load_text("build:\n  password: hunter2: x\n", "wercker.yml")
    assert "hunter2" not in problem.format() and "'password:'" in (problem.hint or "")
