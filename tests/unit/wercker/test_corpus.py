"""The 150 real wercker.yml files (../shared/corpus): nothing crashes, errors are located,
and the patterns corpus-notes.md calls out are read as intended. Files are read in place."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.wercker.model import Problem, WerckerFile
from bot.wercker.parse import load_path
from tests.harness.paths import CORPUS, need_shared

pytestmark = pytest.mark.corpus


def files_dir() -> Path:
    return need_shared(CORPUS) / "files"


def load(name: str) -> tuple[WerckerFile | None, list[Problem]]:
    path = files_dir() / name
    return load_path(path, path.name)


def test_every_file_gives_a_file_or_located_errors() -> None:
    paths = sorted(p for p in files_dir().iterdir() if p.is_file())
    assert len(paths) == 150
    counts = {"clean": 0, "warnings": 0, "errors": 0}
    for path in paths:
        wf, problems = load_path(path, path.name)
        errors = [p for p in problems if p.severity == "error"]
        assert wf is not None or errors, path.name
        for problem in problems:
            assert problem.loc.file == path.name and problem.loc.line >= 1, problem
            assert "internal error" not in problem.message, problem.format()
        counts["errors" if errors else "warnings" if problems else "clean"] += 1
    assert sum(counts.values()) == 150


@pytest.mark.parametrize(
    ("name", "line", "col", "needle"),
    [
        ("wercker__wercker__tests__projects__invalid-config__wercker.yml", 1, 1, "is empty"),
        ("matyix__informers__.wercker.yml", 1, 1, "must be a mapping of pipelines"),
        ("136772__helloword__wercker.yml", 6, 5, "invalid YAML"),  # '-script:'
        ("saurshaz__docker-compose-react-redux-frontend__wercker.yml", 27, 10,
         "mapping values are not allowed"),  # '- bundle-install' then 'cwd: frontend/'
        ("spectatorpublishing__NewShaft__.wercker.yml", 27, 1, "'\\t'"),  # tab indent
        ("pusher__wave__wercker.yml", 45, 7, "invalid YAML"),  # list under an option
        ("AgAmemnno__gowerkgcloud__wercker.yml", 36, 4, "invalid YAML"),  # 3-space 'steps:'
    ],
)
def test_broken_files_point_at_the_right_line(name: str, line: int, col: int,
                                              needle: str) -> None:
    wf, problems = load(name)
    assert wf is None
    (problem,) = problems
    assert problem.severity == "error" and needle in problem.message, problem.format()
    assert (problem.loc.line, problem.loc.col) == (line, col), problem.format()


def test_helloword_hint_names_the_missing_space() -> None:
    _, (problem,) = load("136772__helloword__wercker.yml")
    assert problem.hint and "space after '-'" in problem.hint


def test_sibling_options_docker_hub_test() -> None:
    wf, problems = load("wercker__wercker__tests__projects__docker-hub-test__wercker.yml")
    assert wf is not None and problems == []
    push = wf.pipelines["build"].steps[1]
    assert push.id == "internal/docker-push" and push.loc.line == 12
    assert push.options == {
        "username": "$DOCKER_USERNAME",
        "password": "$DOCKER_PASSWORD",
        "repository": "faiq/test-faiq",
        "registry": "https://registry-1.docker.io",
    }
    assert wf.box and wf.box.options["registry"] == "https://registry-1.docker.io"


def test_sibling_options_mysql_operator() -> None:
    wf, _ = load("oracle__mysql-operator__wercker.yml")
    assert wf is not None
    pushes = [s for p in wf.pipelines.values() for s in p.steps if s.id == "internal/docker-push"]
    assert len(pushes) == 8
    first = pushes[0]
    assert first.loc.line == 55
    assert first.options["repository"] == "iad.ocir.io/oracle/mysql-operator"
    assert first.options["entrypoint"] == "/mysql-operator"
    assert first.options["tag"] == "$VERSION"
    assert (wf.command_timeout, wf.no_response_timeout) == (60, 60)


def test_disable_sync_true_is_lowercase_text() -> None:
    wf, _ = load("wercker__workflows-ecs-ecr-demo__wercker.yml")
    assert wf is not None
    values = [s.options["disable-sync"] for p in wf.pipelines.values() for s in p.steps
              if "disable-sync" in s.options]
    assert values == ["true"]


def test_port_is_read_as_ports_with_a_warning() -> None:
    for path in sorted(files_dir().glob("cloudnativego__*")):
        wf, problems = load_path(path, path.name)
        assert wf is not None
        pushes = [s for p in wf.pipelines.values() for s in p.steps
                  if s.id == "internal/docker-push"]
        assert [s.options.get("ports") for s in pushes] == ["8080"], path.name
        warning = [p for p in problems if "'port' is read as 'ports'" in p.message]
        assert len(warning) == 1 and warning[0].severity == "warning", path.name


def test_deploy_targets_chiefy() -> None:
    wf, _ = load("chiefy__wercker-node-ecs-demo__wercker.yml")
    assert wf is not None
    deploy = wf.pipelines["deploy"]
    assert list(deploy.targets) == ["dockerhub", "ecs"]
    assert deploy.targets["dockerhub"][0].id == "internal/docker-scratch-push"
    assert deploy.targets["dockerhub"][0].loc.line == 50


def test_versioned_registry_steps_are_left_to_the_plan() -> None:
    # Issue 10: registry steps (versioned or not) are resolved at plan time, where the
    # bot's [steps] sources are known (tests/unit/test_plan.py); the lint says nothing.
    wf, problems = load("chiefy__wercker-node-ecs-demo__wercker.yml")
    assert wf is not None
    assert not [p for p in problems if "@" in p.message]
    deploy = wf.pipelines["deploy"]
    ids = [s.id for s in [*deploy.steps, *(s for t in deploy.targets.values() for s in t)]]
    assert "appnific/expandenv@0.1.3" in ids


def test_inline_name_on_sibling_style_script() -> None:
    wf, problems = load("pusher__faros__wercker.yml")
    assert wf is not None
    step = wf.pipelines["dep-install"].steps[1]
    assert (step.id, step.name) == ("script", "Install Dep")
    assert step.options["code"].strip()
    assert any(p.loc.line == 8 and "step's name" in p.message for p in problems)


def test_workflows_and_stray_top_level_keys_warn() -> None:
    wf, problems = load("wercker__wercker__wercker.yml")
    assert wf is not None and "workflows" not in wf.pipelines
    assert any("'workflows' is not used" in p.message for p in problems)
    wf, problems = load("227235__wercker__wercker.yml")
    assert wf is not None and "image" not in wf.pipelines
    assert any(p.severity == "warning" and "'image'" in p.message for p in problems)


def test_stray_top_level_list_is_not_a_pipeline() -> None:
    wf, problems = load("yhjjee__cloud-native-devops-workshop-wercker-oke__wercker.yml")
    assert wf is not None and "ports" not in wf.pipelines
    stray = [p for p in problems if "'ports'" in p.message]
    assert [(p.loc.line, p.severity) for p in stray] == [(5, "warning")]


def pushes(wf: WerckerFile | None) -> list:
    assert wf is not None
    return [s for p in wf.pipelines.values() for s in [*p.steps, *p.after_steps]
            if s.id.startswith("internal/docker-")]


def test_name_is_taken_out_of_push_options_kubermatic() -> None:
    wf, _ = load("kubermatic__kubermatic__wercker.yml")
    first = pushes(wf)[0]
    assert first.name == "push to docker hub as $WERCKER_GIT_COMMIT"
    assert "name" not in first.options
    assert first.options["author"].startswith("Dr. Stefan") and first.options["email"]


def test_sibling_options_wodby() -> None:
    wf, _ = load("wodby__docs__.wercker.yml")
    (push,) = pushes(wf)
    assert push.options["tag"] == "latest, $WERCKER_GIT_BRANCH"
    assert push.options["cmd"] == "nginx -g 'daemon off;'"


def test_tags_and_image_aliases() -> None:
    wf, problems = load("wercker__wercker__tests__projects__sync-env-alpine__wercker.yml")
    assert [s.options.get("tag") for s in pushes(wf)] == ["anytag"]
    assert any(p.loc.line == 16 and "'tags' is read as 'tag'" in p.message for p in problems)
    wf, problems = load("Akshaykapoor__appdev-sample__wercker.yml")
    push = pushes(wf)[-1]
    assert push.options["image-name"] == "sample-webapp" and push.options["ports"] == "80/tcp"
    assert not any("is not built" in p.message for p in problems)


def test_crashcart_box_cmd_is_reported_as_ignored() -> None:
    _, problems = load("oracle__crashcart__wercker.yml")
    (problem,) = [p for p in problems if "box option 'cmd'" in p.message]
    assert problem.severity == "warning" and problem.pipeline == "build-musl"
    assert (problem.loc.line, problem.loc.col) == (13, 5), problem.format()


@pytest.mark.parametrize(
    ("name", "image", "lowered"),
    [
        ("AllanCochrane__go-app1__wercker.yml", "AllanCochrane/golang", "allancochrane/golang"),
        ("jpkira__wercker-oracle-accs-deploy__wercker.yml", "Debian", "debian"),
    ],
)
def test_upper_case_box_is_a_located_error(name: str, image: str, lowered: str) -> None:
    _, problems = load(name)
    (problem,) = [p for p in problems if "box image" in p.message]
    assert problem.severity == "error" and problem.pipeline is None
    assert (problem.loc.line, problem.loc.col) == (1, 6), problem.format()
    assert f"'{image}' is not a valid image reference" in problem.message
    assert problem.hint == f"repository names must be lower-case, e.g. {lowered}"


# -- issue 10: false errors and missing hints found on these files ---------------------------


def test_saurshaz_hint_names_the_plain_list_item_above() -> None:
    _, (problem,) = load("saurshaz__docker-compose-react-redux-frontend__wercker.yml")
    assert problem.hint == (
        "'- bundle-install' above is a plain list item, so 'cwd:' cannot be indented under "
        "it; to give a step options write '- bundle-install:' and indent its options under it"
    )


@pytest.mark.parametrize(
    ("name", "line", "step"),
    [
        ("wercker__getting-started-nodejs__wercker.yml", 9, "internal/watch"),
        ("oracle__oci-cloud-controller-manager__wercker.yml", 4, "internal/shell"),
        ("chiefy__wercker-node-ecs-demo__wercker.yml", 21, "internal/watch"),
    ],
)
def test_dev_steps_are_skipped_with_a_warning(name: str, line: int, step: str) -> None:
    wf, problems = load(name)
    assert wf is not None
    (problem,) = [p for p in problems if step in p.message]
    assert (problem.severity, problem.loc.line) == ("warning", line), problem.format()
    every = [s.id for p in wf.pipelines.values() for s in p.steps]
    assert step not in every


def test_wcr_io_push_without_credentials_warns() -> None:
    _, problems = load("oracle__oci-cloud-controller-manager__wercker.yml")
    (problem,) = [p for p in problems if "wcr.io" in p.message]
    assert (problem.severity, problem.loc.line, problem.pipeline) == ("warning", 77, "push")


def test_hard_coded_pipeline_paths_warn_on_the_local_runner() -> None:
    from bot.wercker.lint import lint_for_runner

    wf, _ = load("wercker__todo-api__wercker.yml")
    assert wf is not None
    found = [p for p in lint_for_runner(wf, "local") if "/pipeline" in p.message]
    assert [(p.loc.line, p.severity) for p in found] == [(43, "warning")] * 3
    assert "use $WERCKER_CACHE_DIR instead of /pipeline/cache" in [p.hint for p in found]
