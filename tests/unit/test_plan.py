"""Compile once: wercker.yml + the repository's settings + the push + what the host can run
→ one ``Plan`` (``bot.plan``). Real files in a temporary checkout, the real frontend and the
real ``RunnerChooser`` with its host probes answered by the test."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

import bot.plan
from bot.errors import InfrastructureError, WerckerFileError
from bot.logs import Log, MemoryLog
from bot.plan import NoWerckerFile, Plan, compile_plan, resolve_box
from bot.runners.sandbox import Sandbox
from bot.runners.select import RunnerChooser
from bot.settings import PipelineChoice, RegistrySettings, RepoSettings, parse_settings

FILE = """\
box: busybox:1.36
build:
  steps:
    - script: {code: b}
deploy:
  steps:
    - script: {code: s}
  production:
    - script: {code: p}
  after-steps:
    - script: {code: a}
release:
  box: {id: "registry.internal:5000/base/img", tag: "$TAG", username: ci, password: $PW}
  steps:
    - script: {code: r}
"""


class Kind:
    """A host that runs every plan on one kind; counts how often it is asked."""

    def __init__(self, kind: str = "docker") -> None:
        self.kind = kind
        self.asked: list[list[str]] = []

    def kind_for(self, boxless: Sequence[str], log: Log) -> str:
        self.asked.append(list(boxless))
        return self.kind


def repo(
    *pipelines: PipelineChoice | str,
    deploy_target: str | None = None,
    env: Mapping[str, str] | None = None,
    secrets: Mapping[str, str] | None = None,
) -> RepoSettings:
    choices = tuple(p if isinstance(p, PipelineChoice) else PipelineChoice(p) for p in pipelines)
    return RepoSettings(
        "acme/app", "", choices, env or {}, secrets or {}, deploy_target=deploy_target
    )


def compile_text(
    tmp_path: Path,
    text: str | None,
    settings: RepoSettings,
    ref: str = "main",
    runners: Any = None,
    registries: Mapping[str, RegistrySettings] | None = None,
) -> tuple[Plan | NoWerckerFile, MemoryLog]:
    source = tmp_path / "checkout"
    source.mkdir(exist_ok=True)
    if text is not None:
        (source / "wercker.yml").write_text(textwrap.dedent(text))
    log = MemoryLog()
    plan = compile_plan(
        source, settings, ref, runners=runners or Kind(), registries=registries or {}, log=log
    )
    return plan, log


def planned(tmp_path: Path, text: str, settings: RepoSettings, **kw: Any) -> Plan:
    plan, _ = compile_text(tmp_path, text, settings, **kw)
    assert isinstance(plan, Plan)
    return plan


def test_no_wercker_yml_is_a_result_not_an_error(tmp_path: Path) -> None:
    kinds = Kind()
    plan, log = compile_text(tmp_path, None, repo("build"), runners=kinds)
    assert plan == NoWerckerFile()
    assert "no wercker.yml or .wercker.yml in the repository root" in log.text
    assert kinds.asked == []  # nothing to run: the host is not even asked


def test_pipelines_follow_the_configured_order_and_branch_globs(tmp_path: Path) -> None:
    choices = ("deploy", PipelineChoice("release", ("main", "release/*")), "build", "missing")
    settings = repo(*choices, env={"TAG": "1"}, secrets={"PW": "pw"})
    plan = planned(tmp_path, FILE, settings, ref="release/1.2")
    assert plan.names == ["deploy", "release", "build"]
    assert [p.position for p in plan.pipelines] == [0, 1, 2]
    # Wercker's deploy environment: a pipeline named deploy, and any after the first.
    assert [p.deploy for p in plan.pipelines] == [True, True, True]
    plan = planned(tmp_path, FILE, repo(*choices), ref="feature/x")
    assert plan.names == ["deploy", "build"]
    assert [p.deploy for p in plan.pipelines] == [True, True]
    plan = planned(tmp_path, FILE, repo("build", "deploy"))
    assert [p.deploy for p in plan.pipelines] == [False, True]


def test_none_of_the_pipelines_defined_is_decided_here(tmp_path: Path) -> None:
    with pytest.raises(WerckerFileError) as err:
        compile_text(tmp_path, FILE, repo("test", "push"))
    assert str(err.value) == (
        "none of test, push is defined in wercker.yml; it defines: build, deploy, release"
    )


def test_the_deploy_target_replaces_steps_but_not_after_steps(tmp_path: Path) -> None:
    plan = planned(tmp_path, FILE, repo("deploy", deploy_target="production"))
    deploy = plan.pipelines[0]
    assert [s.options["code"] for s in deploy.steps] == ["p"]
    assert [s.options["code"] for s in deploy.after_steps] == ["a"]
    assert deploy.deploy_target == "production" and plan.warnings == ()


def test_a_missing_deploy_target_is_a_plan_warning(tmp_path: Path) -> None:
    plan, log = compile_text(tmp_path, FILE, repo("deploy", deploy_target="k8s"))
    assert isinstance(plan, Plan)
    assert [s.options["code"] for s in plan.pipelines[0].steps] == ["s"]
    (warning,) = plan.warnings
    assert "has no deploy target 'k8s' (it has production)" in warning.message
    assert f"warning: {warning.format()}" in log.text


def test_only_deploy_targets_and_none_chosen_blocks_with_todays_message(tmp_path: Path) -> None:
    text = "build:\n  steps: [{script: {code: b}}]\ndeploy:\n  hub: [{script: {code: h}}]\n"
    with pytest.raises(WerckerFileError) as err:
        compile_text(tmp_path, text, repo("build", "deploy"))
    assert str(err.value) == (
        "wercker.yml line 3: pipeline 'deploy' has only deploy targets (hub); set "
        "deploy_target for this repository"
    )


def test_boxes_are_resolved_and_expanded_with_env_and_secrets(tmp_path: Path) -> None:
    registries = {
        "registry.internal:5000": RegistrySettings(
            host="registry.internal:5000", username="ci", password="from-config"
        )
    }
    settings = repo("build", "release", env={"TAG": "2.0"}, secrets={"PW": "s3cret"})
    plan, log = compile_text(tmp_path, FILE, settings, registries=registries)
    assert isinstance(plan, Plan)
    build, release = plan.pipelines
    assert build.box is not None and str(build.box.image) == (
        "registry-1.docker.io/library/busybox:1.36"
    )
    assert release.box is not None
    assert str(release.box.image) == "registry.internal:5000/base/img:2.0"
    assert release.box.image.auth.password == "s3cret"
    log.info("the password s3cret")  # the box's credentials are masked from now on
    assert "s3cret" not in log.text


def test_a_boxless_pipeline_has_no_box(tmp_path: Path) -> None:
    plan = planned(tmp_path, "build:\n  steps: [{script: {code: b}}]\n", repo("build"))
    assert plan.pipelines[0].box is None


def test_timeouts_source_dir_and_base_path_are_planned(tmp_path: Path) -> None:
    text = (
        "command-timeout: 90\nno-response-timeout: 10\nsource-dir: app\n"
        "build:\n  base-path: /go/src/x\n  steps: [{script: {code: b}}]\n"
    )
    build = planned(tmp_path, text, repo("build")).pipelines[0]
    assert (build.timeouts.command, build.timeouts.no_response) == (60 * 60, 10 * 60)
    assert build.source_dir == "app" and build.base_path == "/go/src/x"


def _chooser(tmp_path: Path, kind: str, engine: bool = True) -> RunnerChooser:
    settings = parse_settings(
        {"data_dir": str(tmp_path / "data"), "runner": {"kind": kind}}, {}, base_dir=tmp_path
    )
    return RunnerChooser(
        settings,
        engine_probe=lambda: (engine, "runner: docker (engine 27.0 at unix:///test)"),
        sandbox_probe=lambda: (Sandbox("/usr/bin/bwrap"), "bubblewrap 0.8.0"),
    )


def test_auto_runs_a_boxless_plan_on_the_sandbox_and_a_boxed_one_on_the_engine(
    tmp_path: Path,
) -> None:
    boxless = "build:\n  steps: [{script: {code: b}}]\n"
    plan, log = compile_text(tmp_path, boxless, repo("build"), runners=_chooser(tmp_path, "auto"))
    assert isinstance(plan, Plan)
    assert plan.runner_kind == "local" and plan.pipelines[0].runner_kind == "local"
    assert "runner: local (auto; no box in pipeline(s) build; sandbox: bubblewrap 0.8.0)" in (
        log.text
    )
    plan = planned(tmp_path, "box: busybox\n" + boxless, repo("build"),
                   runners=_chooser(tmp_path, "auto"))  # fmt: skip
    assert plan.runner_kind == "docker"


def test_auto_never_runs_unsandboxed(tmp_path: Path) -> None:
    chooser = _chooser(tmp_path, "auto", engine=False)
    chooser._sandbox_probe = lambda: (None, "bwrap was not found on PATH")
    with pytest.raises(InfrastructureError, match="no Docker Engine answered and bubblewrap"):
        compile_text(tmp_path, "build:\n  steps: [{script: {code: b}}]\n", repo("build"),
                     runners=chooser)  # fmt: skip


def test_the_host_is_probed_once(tmp_path: Path) -> None:
    calls = {"engine": 0, "sandbox": 0}
    settings = parse_settings(
        {"data_dir": str(tmp_path / "data"), "runner": {"kind": "auto"}}, {}, base_dir=tmp_path
    )

    def engine() -> tuple[bool, str]:
        calls["engine"] += 1
        return True, "runner: docker (engine)"

    def sandbox() -> tuple[Sandbox | None, str]:
        calls["sandbox"] += 1
        return Sandbox("/usr/bin/bwrap"), "bubblewrap"

    chooser = RunnerChooser(settings, engine_probe=engine, sandbox_probe=sandbox)
    kind = chooser.kind_for(["build"], MemoryLog())
    assert chooser.runner(kind).kind == "local"
    assert calls == {"engine": 1, "sandbox": 1}


def test_lint_runs_once_told_the_runner_kind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[str] = []
    real = bot.plan.lint_for_runner

    def counting(wf: Any, kind: str) -> Any:
        seen.append(kind)
        return real(wf, kind)

    monkeypatch.setattr(bot.plan, "lint_for_runner", counting)
    text = "build:\n  steps:\n    - internal/docker-build:\n        image-name: app\n"
    # auto without a box → local: docker-build cannot run there, and that blocks.
    needs_engine = r"^wercker.yml line 3: internal/docker-build needs a Docker Engine"
    with pytest.raises(WerckerFileError, match=needs_engine):
        compile_text(tmp_path, text, repo("build"), runners=_chooser(tmp_path, "auto"))
    assert seen == ["local"]
    seen.clear()
    plan = planned(tmp_path, "box: busybox\n" + text, repo("build"),
                   runners=_chooser(tmp_path, "auto"))  # fmt: skip
    assert seen == ["docker"] and plan.runner_kind == "docker"


def test_a_blocking_lint_error_names_its_line_and_counts_the_rest(tmp_path: Path) -> None:
    # An unresolvable registry step (plan time) and a lint error, sorted by line.
    text = "build:\n  steps:\n    - acme/no-such-step\n    - internal/store-container\n"
    with pytest.raises(WerckerFileError) as err:
        compile_text(tmp_path, text, repo("build"))
    assert str(err.value).startswith("wercker.yml line 3: step 'acme/no-such-step'")
    assert str(err.value).endswith(" (+1 more)")


def test_errors_in_pipelines_that_do_not_run_are_kept_but_do_not_block(tmp_path: Path) -> None:
    text = "dev:\n  steps: [internal/docker-pusj]\nbuild:\n  steps: [{script: {code: b}}]\n"
    plan = planned(tmp_path, text, repo("build"))
    assert plan.names == ["build"]
    assert [p.loc.line for p in plan.problems if p.severity == "error"] == [2]


def test_an_unreadable_file_blocks_naming_its_line(tmp_path: Path) -> None:
    with pytest.raises(WerckerFileError, match=r"^wercker.yml line 3"):
        compile_text(tmp_path, "build:\n  steps:\n - [unclosed\n", repo("build"))


# -- resolve_box (moved from the executor, which no longer resolves boxes) ----------------


@pytest.mark.parametrize(
    ("box_id", "tag", "expected"),
    [
        ("busybox", "1.36", "registry-1.docker.io/library/busybox:1.36"),
        ("127.0.0.1:5000/a/b:old", "new", "127.0.0.1:5000/a/b:new"),
        ("127.0.0.1:5000/a/b", "", "127.0.0.1:5000/a/b:latest"),
    ],
)
def test_box_tag_option_replaces_the_ids_tag(box_id: str, tag: str, expected: str) -> None:
    from bot.wercker.model import BoxSpec, Loc

    box = BoxSpec(box_id, Loc("wercker.yml", 1, 1), {"tag": tag} if tag else {})
    ref, _ = resolve_box(box, {}, {}, MemoryLog())
    assert str(ref) == expected


def _box(options: dict[str, str], box_id: str = "acme/app") -> Any:
    from bot.wercker.model import BoxSpec, Loc

    box = BoxSpec(box_id, Loc("wercker.yml", 1, 1), options)
    ref, _ = resolve_box(box, {"PW": "pw-value"}, REGISTRIES, MemoryLog())
    return ref


REGISTRIES = {
    "registry.internal:5000": RegistrySettings(
        host="registry.internal:5000", username="ci", password="from-config"
    )
}


def test_box_registry_option_decides_the_host_and_gets_the_credentials() -> None:
    ref = _box({"registry": "https://quay.io", "username": "u", "password": "$PW"})
    assert (ref.registry, ref.repository) == ("quay.io", "acme/app")
    assert ref.auth.password == "pw-value"


def test_box_with_ecr_keys_pulls_from_ecr() -> None:
    keys = {
        "aws-access-key": "AK",
        "aws-secret-key": "SK",
        "aws-region": "eu-west-1",
        "aws-registry-id": "123456789012",
    }
    ref = _box(keys)
    assert ref.registry == "123456789012.dkr.ecr.eu-west-1.amazonaws.com"


def test_box_credentials_default_to_the_registry_config() -> None:
    ref = _box({}, "registry.internal:5000/base/img@sha256:" + "a" * 64)
    assert ref.auth.username == "ci" and ref.auth.password == "from-config"
    assert ref.reference == "sha256:" + "a" * 64


# -- registry steps: resolved at plan time (issue 10) ----------------------------------------


def _steps_settings(tmp_path: Path, table: dict[str, Any]) -> Any:
    from bot.stepsources.resolve import StepSources

    settings = parse_settings(
        {"data_dir": str(tmp_path / "data"), "steps": table}, {}, base_dir=tmp_path
    )
    return StepSources.from_settings(settings, "")


def _step_dir(path: Path, text: str = "echo hi\n") -> Path:
    path.mkdir(parents=True)
    (path / "run.sh").write_text(text)
    (path / "step.yml").write_text(
        "name: x\nversion: 2.0.0\nproperties:\n  - {name: p, default: d}\n"
    )
    return path


def test_an_unresolvable_registry_step_names_its_line_and_the_config_key(tmp_path: Path) -> None:
    text = "build:\n  steps:\n    - script: {code: b}\n  after-steps:\n    - acme/notify@0.3.6\n"
    with pytest.raises(WerckerFileError) as err:
        compile_text(tmp_path, text, repo("build"))
    message = str(err.value)
    assert message.startswith("wercker.yml line 5: step 'acme/notify@0.3.6' is not a step type")
    assert '[steps] "acme/notify" = { git = "<url>", ref = "<branch|tag|sha>" }' in message


def test_the_plan_carries_each_resolved_package(tmp_path: Path) -> None:
    mine = _step_dir(tmp_path / "steps" / "notify")
    sources = _steps_settings(tmp_path, {"acme/notify": {"path": str(mine)}})
    text = (
        "build:\n  steps:\n    - acme/notify\n    - script: {code: b}\n"
        "  after-steps:\n    - acme/notify: {p: x}\n"
    )
    source = tmp_path / "checkout"
    source.mkdir()
    (source / "wercker.yml").write_text(text)
    log = MemoryLog()
    plan = compile_plan(
        source, repo("build"), "main", runners=Kind(), registries={}, log=log, steps=sources
    )
    assert isinstance(plan, Plan)
    (pipeline,) = plan.pipelines
    package = pipeline.packages["acme/notify"]
    assert (package.directory, package.version, package.origin) == (mine, "2.0.0", f"path {mine}")
    assert log.text.count("step acme/notify: acme/notify version 2.0.0 from path") == 1
    assert "script" not in pipeline.packages


def test_a_configured_source_overrides_the_built_in_library(tmp_path: Path) -> None:
    mine = _step_dir(tmp_path / "mine")
    text = "build:\n  steps:\n    - npm-install\n"
    source = tmp_path / "checkout"
    source.mkdir()
    (source / "wercker.yml").write_text(text)
    sources = _steps_settings(tmp_path, {"wercker/npm-install": {"path": str(mine)}})
    plan = compile_plan(
        source, repo("build"), "main", runners=Kind(), registries={}, log=MemoryLog(), steps=sources
    )
    assert isinstance(plan, Plan)
    assert plan.pipelines[0].packages["npm-install"].directory == mine


SERVICES = """\
services:
  - redis:7
  - id: registry.internal:5000/acme/db
    tag: $DB_TAG
    name: db
    username: ci
    password: $DB_PW
    cmd: db-server --port 5432
    env:
      db_user: $USER_NAME
build:
  steps:
    - script: {code: b}
deploy:
  services: []
  steps:
    - script: {code: d}
"""


def test_services_are_planned_like_the_box(tmp_path: Path) -> None:
    # Issue 10: each pipeline carries its services, resolved and expanded as the box is.
    settings = repo(
        "build", "deploy", env={"DB_TAG": "9", "USER_NAME": "app"}, secrets={"DB_PW": "s3cret"}
    )
    plan, log = compile_text(tmp_path, SERVICES, settings)
    assert isinstance(plan, Plan)
    build, deploy = plan.pipelines
    assert deploy.services == ()  # a pipeline's own `services: []` disables the file's
    redis, db = build.services
    assert (redis.name, redis.image.repository, redis.image.reference) == (
        "redis", "library/redis", "7"
    )  # fmt: skip
    assert (db.name, db.image.registry, db.image.reference) == ("db", "registry.internal:5000", "9")
    assert db.image.auth.password == "s3cret" and dict(db.env) == {"DB_USER": "app"}
    assert db.cmd == ("db-server", "--port", "5432") and db.entrypoint is None
    assert "s3cret" not in log.text


def test_a_service_on_the_local_runner_is_an_error_naming_the_docker_runner(
    tmp_path: Path,
) -> None:
    with pytest.raises(WerckerFileError, match="needs the docker runner"):
        compile_text(tmp_path, SERVICES, repo("build"), runners=Kind("local"))
