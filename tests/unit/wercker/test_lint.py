"""``bot.wercker.lint``: what runs the checks over a whole file (pipeline names near a
default one, pushes of images no step built), the runner-specific lint (docker-only steps,
services, hard-coded ``/pipeline`` paths on the local runner), and the ``check_file`` /
JSON seam of ``wercker-bot check``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.wercker.lint import check_file, lint_for_runner, problems_to_json
from tests.unit.wercker.helpers import loaded, only

DOCKER_BUILD = (
    "build:\n  docker: true\n  steps:\n    - internal/docker-build:\n        image-name: x\n"
)


def test_lint_for_runner() -> None:
    wf, problems = loaded(DOCKER_BUILD)
    assert [p for p in problems if p.severity == "error"] == []
    local = lint_for_runner(wf, "local")
    build = only(local, "internal/docker-build needs a Docker Engine (runner kind docker)")
    assert (build.severity, build.loc.line) == ("error", 4)
    assert only(local, "'docker: true'").severity == "warning"
    assert {p.severity for p in lint_for_runner(wf, "auto")} == {"warning"}
    assert lint_for_runner(wf, "docker") == []


def test_check_file_and_json(tmp_path: Path) -> None:
    path = tmp_path / "wercker.yml"
    path.write_text(DOCKER_BUILD + "    - npm test\n")
    problems = check_file(path, "local")
    assert [(p.loc.line, p.severity) for p in problems] == [
        (1, "warning"),
        (4, "error"),
        (6, "error"),
    ]
    data = problems_to_json(problems)
    json.dumps(data)
    assert data[1] == {
        "file": str(path),
        "line": 4,
        "col": 7,
        "severity": "error",
        "message": "internal/docker-build needs a Docker Engine (runner kind docker)",
        "hint": "build the image in a script step or push with internal/docker-scratch-push",
        "pipeline": "build",
    }
    assert check_file(tmp_path / "missing.yml")[0].severity == "error"


def test_check_file_on_a_directory(tmp_path: Path) -> None:
    assert "no wercker.yml" in check_file(tmp_path)[0].message
    (tmp_path / ".wercker.yml").write_text("build:\n  steps: [npm test]\n")
    (problem,) = check_file(tmp_path)
    assert problem.loc.file == str(tmp_path / ".wercker.yml")


def test_image_name_without_docker_build_warns() -> None:
    _, problems = loaded(
        "build:\n  steps:\n    - internal/docker-build: {image-name: a}\n"
        "    - internal/docker-push: {repository: r, image-name: a}\n"
        "    - internal/docker-push: {repository: r, image-name: b}\n"
        "  after-steps:\n    - internal/docker-push: {repository: r, image-name: a}\n"
    )
    assert only(problems, "image-name 'b' is not built").loc.line == 5


SERVICE_FILE = """\
services:
  - mongo
build:
  steps:
    - script:
        code: 'true'
    - internal/docker-run:
        name: web
        image: acme/web
    - internal/docker-kill:
        name: web
"""


def test_services_and_docker_run_need_the_docker_runner() -> None:
    # Issue 10: the docker runner starts services and docker-run containers; on the local
    # runner each is an error naming the docker runner (a warning on auto).
    wf, problems = loaded(SERVICE_FILE)
    assert problems == []
    assert wf is not None
    assert lint_for_runner(wf, "docker") == []
    found = lint_for_runner(wf, "local")
    assert [(p.loc.line, p.severity, p.pipeline) for p in found] == [
        (2, "error", "build"),
        (7, "error", "build"),
        (10, "error", "build"),
    ]
    assert all("needs the docker runner" in p.message for p in found)
    assert "service 'mongo'" in found[0].message and "internal/docker-run" in found[1].message
    assert {p.severity for p in lint_for_runner(wf, "auto")} == {"warning"}
    # A pipeline's own services replace the file's; `services: []` disables them.
    wf, _ = loaded(SERVICE_FILE.replace("build:\n", "build:\n  services: []\n"))
    assert wf is not None
    assert [p.loc.line for p in lint_for_runner(wf, "local")] == [8, 11]


# -- pipeline names -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "wanted"),
    [("buid", "build"), ("Build", "build"), ("delpoy", "deploy"), ("bulid", "build")],
)
def test_a_near_miss_of_a_default_pipeline_name_warns(name: str, wanted: str) -> None:
    _, problems = loaded(f"{name}:\n  steps: [{{script: {{code: a}}}}]\n")
    problem = only(problems, "looks like a misspelling")
    assert (problem.severity, problem.loc.line, problem.pipeline) == ("warning", 1, None)
    assert f"'{name}'" in problem.message and problem.hint
    assert problem.hint.startswith(f"did you mean '{wanted}'?")


@pytest.mark.parametrize(
    "text",
    [
        "buid:\n  steps: [{script: {code: a}}]\nbuild:\n  steps: [{script: {code: a}}]\n",
        "build-arm:\n  steps: [{script: {code: a}}]\n",
        "rebuild:\n  steps: [{script: {code: a}}]\n",
        "deploy2:\n  steps: [{script: {code: a}}]\n",
        "test:\n  steps: [{script: {code: a}}]\n",
    ],
)
def test_deliberate_pipeline_names_do_not_warn(text: str) -> None:
    _, problems = loaded(text)
    assert not [p for p in problems if "misspelling" in p.message]


# -- hard-coded guest paths on the local runner -----------------------------------------------


GUEST_PATHS = (
    "build:\n  steps:\n    - script:\n        name: s\n        code: |\n"
    "          cd /pipeline/source && cp a /pipeline/output/b\n"
    "          ls /pipeline/source/x /pipeline/cache /pipeline/script/run\n"
    "          ls /home/pipeline/source ${D}/pipeline/x $D/pipeline /pipelines /pipeline.txt\n"
)


def test_pipeline_paths_on_the_local_runner_name_the_variable() -> None:
    wf, problems = loaded(GUEST_PATHS)
    assert not [p for p in problems if "/pipeline" in p.message]  # runner-independent: none
    found = lint_for_runner(wf, "local")
    assert [(p.severity, p.loc.line, p.pipeline) for p in found] == [("warning", 5, "build")] * 4
    hints = [p.hint for p in found]
    assert hints[0] and hints[0].startswith("use $WERCKER_ROOT")
    assert "$WERCKER_SOURCE_DIR" in hints[0]
    assert hints[1:] == [
        "use $WERCKER_OUTPUT_DIR instead of /pipeline/output",
        "use $WERCKER_CACHE_DIR instead of /pipeline/cache",
        "use $WERCKER_PIPELINE_DIR/script instead of /pipeline/script",
    ]
    assert "/pipeline/source" in found[0].message and "script step 's'" in found[0].message
    auto = lint_for_runner(wf, "auto")
    assert len(auto) == 4 and "auto runner picks local" in auto[0].message
    assert lint_for_runner(wf, "docker") == []


def test_pipeline_path_warnings_are_bounded() -> None:
    code = " ".join(f"/pipeline/d{i}" for i in range(50))
    wf, _ = loaded(f"build:\n  steps:\n    - script: {{code: '{code}'}}\n")
    assert len(lint_for_runner(wf, "local-unsafe")) == 5


# -- registry steps the built-in library does not serve ----------------------------------------


def test_check_file_warns_of_registry_steps_the_library_does_not_serve(tmp_path: Path) -> None:
    path = tmp_path / "wercker.yml"
    path.write_text(
        "build:\n  steps:\n    - npm-install\n    - acme/greet@1.0\n    - script: {code: a}\n"
        "    - internal/docker-build: {image-name: x}\n  after-steps:\n    - acme/notify\n"
    )
    asked: list[str] = []

    def built_in(step_id: str) -> bool:
        asked.append(step_id)
        return step_id == "npm-install"

    problems = check_file(path, built_in=built_in)
    assert asked == ["npm-install", "acme/greet@1.0", "acme/notify"]
    assert [(p.loc.line, p.severity, p.pipeline) for p in problems] == [
        (4, "warning", "build"),
        (8, "warning", "build"),
    ]
    assert problems[0].message == "step 'acme/greet@1.0' is not in the bot's built-in library"
    assert problems[0].hint == (
        'the bot runs it only with [steps] "acme/greet" = { git = "<url>", ref = "<ref>" } '
        "in its config"
    )
    assert check_file(path) == []  # without the question, nothing is said
