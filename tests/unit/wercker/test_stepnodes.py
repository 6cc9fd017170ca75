"""``bot.wercker.stepnodes``: reading steps, options and boxes from the node graph: the three
step forms, option text as written, aliases, skipped steps (dev-only, script without code),
duplicate and merged keys, box env names."""

from __future__ import annotations

import json
import textwrap

import pytest
from yaml.nodes import MappingNode, Node

from bot.wercker.lint import lint_for_runner
from bot.wercker.parse import load_text
from bot.wercker.stepnodes import StepReader
from bot.wercker.yamlnodes import compose
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


def test_script_without_code_is_a_skipped_no_op() -> None:
    # Issue 10: Wercker ran a script with a name and no code as a no-op; only a null
    # '- script:' is an error (test_empty_script_is_an_error above).
    wf, problems = loaded(
        "build:\n  steps:\n    - script:\n        name: x\n    - script\n"
        "    - script:\n        cod: a\n    - script: {code: b}\n"
    )
    assert [p.severity for p in problems] == ["warning"] * 3
    assert [p.loc.line for p in problems] == [3, 5, 6]
    assert "script step 'x' has no code; it does nothing and is skipped" in problems[0].message
    assert problems[2].hint == "did you mean 'code'?"
    assert [s.options for s in wf.pipelines["build"].steps] == [{"code": "b"}]


@pytest.mark.parametrize("step", ["internal/watch", "internal/shell"])
def test_dev_only_steps_are_skipped_with_a_warning(step: str) -> None:
    wf, problems = loaded(
        f"build:\n  steps:\n    - {step}:\n        code: x\n        reload: true\n"
        "    - script: {code: b}\n  after-steps:\n"
        f"    - {step}\n"
    )
    assert [(p.severity, p.loc.line, p.pipeline) for p in problems] == [
        ("warning", 3, "build"),
        ("warning", 8, "build"),
    ]
    assert f"{step} is a Wercker dev-mode step; it is skipped" in problems[0].message
    build = wf.pipelines["build"]
    assert [s.id for s in build.steps] == ["script"] and build.after_steps == []
    assert not lint_for_runner(wf, "local")


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


# -- the StepReader called directly, on composed nodes ----------------------------------------


def _reader_and_root(text: str) -> tuple[StepReader, MappingNode]:
    root, anchored = compose(textwrap.dedent(text))
    assert isinstance(root, MappingNode)
    reader = StepReader("wercker.yml")
    reader.anchored = anchored
    return reader, root


def _value(root: MappingNode, key: str) -> Node:
    return next(value for k, value in root.value if k.value == key)


def test_problems_are_tagged_with_the_pipeline_being_read() -> None:
    reader, root = _reader_and_root("steps: {script: {code: a}}\n")
    reader.pipeline = "deploy"
    assert reader.steps(_value(root, "steps")) == []
    (problem,) = reader.problems
    assert problem.message.startswith("steps must be a list")
    assert (problem.pipeline, problem.loc.line, problem.loc.col) == ("deploy", 1, 8)


@pytest.mark.parametrize(
    ("steps", "needle"),
    [
        ("- ''", "empty step"),
        ("- {}", "empty step"),
        ("- [a]", "a step must be a step id or a mapping, not a list"),
        ("- script: [a]", "the options of step 'script' must be a mapping, not a list"),
    ],
)
def test_steps_that_cannot_be_read_are_errors_and_dropped(steps: str, needle: str) -> None:
    reader, root = _reader_and_root(f"steps:\n  {steps}\n  - npm-install\n")
    assert [s.id for s in reader.steps(_value(root, "steps"))] == ["npm-install"]
    (problem,) = reader.problems
    assert (problem.severity, problem.message, problem.loc.line) == ("error", needle, 2)


@pytest.mark.parametrize(
    ("value", "option", "needle"),
    [
        (
            "[a, {b: c}]",
            "tag",
            "'tag' must be a list of plain values, not a list holding a mapping",
        ),
        ("{A: [1]}", "env", "'env' values must be plain text"),
        ("{a: b}", "tag", "'tag' must be text, not a mapping"),
    ],
)
def test_option_values_of_the_wrong_shape_are_errors_read_as_empty(
    value: str, option: str, needle: str
) -> None:
    reader, root = _reader_and_root(f"v: {value}\n")
    assert reader.scalar(_value(root, "v"), option) == ""
    assert [p.message for p in reader.problems] == [needle]


def test_boxes_without_an_image_are_errors() -> None:
    reader, root = _reader_and_root("a: {tag: '1'}\nb: ''\nc: [x]\n")
    assert [reader.box(_value(root, key)) for key in "abc"] == [None, None, None]
    assert [p.message for p in reader.problems] == [
        "box has no 'id' (the image to use)",
        "box has no image",
        "a box must be an image name or a mapping, not a list",
    ]


def test_services_written_as_one_box_are_read_as_a_list_of_one() -> None:
    reader, root = _reader_and_root("services: {id: mongo}\n")
    (service,) = reader.services(_value(root, "services"))
    assert service.id == "mongo"
    assert only(reader.problems, "should be a list").severity == "warning"


def test_a_key_that_is_not_text_is_an_error() -> None:
    reader, root = _reader_and_root("m: {[a]: 1, b: 2}\n")
    value = _value(root, "m")
    assert isinstance(value, MappingNode)
    assert [k.value for k, _ in reader.pairs(value)] == ["b"]
    assert [p.message for p in reader.problems] == ["a key must be text, not a list"]
