"""Step packages end to end (issue 10, items 1 and 2): packages the tests write into local
git repositories, configured through ``[steps]``, run through the real orchestration (git
checkout, plan, store, statuses) on BOTH runners: local (bubblewrap sandbox) and docker
(a busybox box on the private dockerd)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bot.build import execute
from bot.settings import parse_settings
from bot.store.rows import NewPush
from bot.wiring import build_services
from tests.harness.gitrepo import make_remote
from tests.harness.steprepo import commit_symlink, source, step_repo
from tests.integration.docker.conftest import box_registry, busybox_box  # noqa: F401

RUNNERS = ["local", pytest.param("docker", marks=pytest.mark.docker)]

GREET = """\
echo "greeting=$WERCKER_GREET_GREETING loud=$WERCKER_GREET_LOUD shout=$WERCKER_GREET_SHOUT"
echo "who=$WERCKER_GREET_WHO"
echo "step=$WERCKER_STEP_OWNER/$WERCKER_STEP_NAME id=${WERCKER_STEP_ID%%-*}"
if [ -f "$WERCKER_STEP_ROOT/run.sh" ] && [ -f "$WERCKER_STEP_ROOT/lib/helper.sh" ]; then
  . "$WERCKER_STEP_ROOT/lib/helper.sh"
fi
info "informed"
export GREETED="yes-$WERCKER_GREET_GREETING"
echo "greeted them all" > "$WERCKER_REPORT_MESSAGE_FILE"
"""

BROKEN = """\
echo "before the failure"
fail "$WERCKER_BROKEN_REASON"
echo "after the failure"
"""


def run_build(
    tmp_path: Path, runner: str, wercker_yml: str, steps: dict[str, Any], request: Any
) -> dict[str, Any]:
    """Pushes ``wercker_yml`` and runs the build with ``[steps] = steps`` on ``runner``."""
    runner_cfg: dict[str, Any] = {"kind": "local"}
    if runner == "docker":
        dockerd = request.getfixturevalue("dockerd")
        box = request.getfixturevalue("busybox_box")
        runner_cfg = {"kind": "docker", "docker_host": dockerd.host}
        wercker_yml = f"box: {box}\n{wercker_yml}"
    remote = make_remote(tmp_path / "app")
    sha = remote.commit({"wercker.yml": wercker_yml})
    settings = parse_settings(
        {
            "data_dir": str(tmp_path / "data"),
            "base_url": "http://bot.test",
            "github": {"webhook_secret": "s" * 16, "status_context": "wb"},
            "runner": runner_cfg,
            "repos": {"acme/app": {"clone_url": remote.url, "pipelines": ["build"]}},
            "steps": steps,
        },
        {},
        base_dir=tmp_path,
    )
    services = build_services(settings)
    push = NewPush(
        hook_id="1", delivery_id="d1", repo="acme/app", ref="refs/heads/main", branch="main",
        git_tag="", sha=sha, before_sha="0" * 40, message="m", pusher="p",
        html_url="https://github.com/acme/app", pipelines=["build"],
    )  # fmt: skip
    intake = services.store.record_push(push)
    claim = services.store.claim_next("test")
    assert claim is not None
    result = execute(claim, services)
    detail = services.store.build_detail(intake.build_id or 0)
    assert detail is not None
    attempt = detail.attempts[-1]
    log, _ = services.store.log_text(attempt.id)
    statuses = {
        row.context.split("/", 1)[1]: f"{row.state}: {row.description}"
        for row in services.store.statuses_for("acme/app", sha)
    }
    rows = [s for p in attempt.pipelines for s in p.steps]
    if runner == "docker" and rows:
        assert f"box: {box}" in log, log  # it really ran in the box container
    return {"result": str(result), "log": log, "statuses": statuses, "steps": rows}


@pytest.mark.parametrize("runner", RUNNERS)
def test_a_generation_2_package_with_defaults_booleans_message_and_exports(
    tmp_path: Path, runner: str, request: pytest.FixtureRequest
) -> None:
    remote = step_repo(
        tmp_path / "greet", "greet", GREET,
        {"greeting": "hi", "loud": True, "who": None},
        extra={"lib/helper.sh": 'echo "helper sourced from $WERCKER_STEP_NAME"\n'},
    )  # fmt: skip
    yml = (
        "build:\n  steps:\n"
        "    - acme/greet:\n        shout: yes\n        who: $WERCKER_GIT_BRANCH-x\n"
        '    - script:\n        name: later\n        code: echo "later sees $GREETED"\n'
    )
    got = run_build(tmp_path, runner, yml, {"acme/greet": source(remote)}, request)
    log = got["log"]
    assert got["result"] == "passed", log
    assert "greeting=hi loud=true shout=true" in log  # default; raw `true`; yes → true
    assert "who=main-x" in log  # $VAR in an option expands, as Wercker's export line did
    assert "step=acme/greet id=greet" in log
    assert "helper sourced from greet" in log  # the whole package reached the box
    assert "info: informed" in log
    assert "later sees yes-hi" in log  # the package's export reached the next step
    greet = next(s for s in got["steps"] if s.step_id == "acme/greet")
    assert greet.message == "greeted them all"  # WERCKER_REPORT_MESSAGE_FILE
    commit = remote_sha(remote)
    assert f"acme/greet version 1.0.0 from git {remote.url} main at {commit}" in log


def remote_sha(remote: Any) -> str:
    from tests.harness.gitrepo import git

    return git(remote.work, "rev-parse", "HEAD")


@pytest.mark.parametrize("runner", RUNNERS)
def test_a_generation_1_package_failing_with_a_message(
    tmp_path: Path, runner: str, request: pytest.FixtureRequest
) -> None:
    remote = step_repo(
        tmp_path / "broken", "broken", BROKEN, {"reason": "the widget is bent"}, generation=1
    )
    yml = "build:\n  steps:\n    - acme/broken\n    - script: {name: never, code: echo never}\n"
    got = run_build(tmp_path, runner, yml, {"acme/broken": source(remote)}, request)
    log = got["log"]
    assert got["result"] == "failed", log
    assert "before the failure" in log and "failed: the widget is bent" in log
    assert "after the failure" not in log
    assert got["statuses"]["build"].startswith("failure: the widget is bent"), got["statuses"]
    assert [s.state for s in got["steps"]] == ["failed", "skipped"]


@pytest.mark.parametrize("runner", RUNNERS)
def test_an_unresolvable_step_is_a_located_error_naming_the_config_key(
    tmp_path: Path, runner: str, request: pytest.FixtureRequest
) -> None:
    yml = "build:\n  steps:\n    - script: {code: 'true'}\n    - acme/nowhere@1.2.3\n"
    got = run_build(tmp_path, runner, yml, {}, request)
    status = got["statuses"]["build"]
    assert got["result"] in ("failed", "errored"), got["log"]
    assert "wercker.yml line " in status and "acme/nowhere@1.2.3" in status, status
    assert '[steps] "acme/nowhere"' in got["log"]


@pytest.mark.parametrize("runner", RUNNERS)
def test_a_link_in_a_step_package_never_reads_a_host_file(
    tmp_path: Path, runner: str, request: pytest.FixtureRequest
) -> None:
    host = tmp_path / "host-secret.txt"
    host.write_text("HOST-SECRET-MARKER\n")
    run_sh = 'cat "$WERCKER_STEP_ROOT/leak" 2>/dev/null || echo "the link leads nowhere"\n'
    remote = step_repo(tmp_path / "sneaky", "sneaky", run_sh)
    commit_symlink(remote, "leak", str(host))
    yml = "build:\n  steps:\n    - acme/sneaky\n"
    got = run_build(tmp_path, runner, yml, {"acme/sneaky": source(remote)}, request)
    assert got["result"] == "passed", got["log"]
    assert "the link leads nowhere" in got["log"]
    assert "HOST-SECRET-MARKER" not in got["log"]


@pytest.mark.parametrize("linked", ["step.yml", "run.sh"])
def test_a_linked_manifest_or_run_sh_is_refused_at_plan_time(
    tmp_path: Path, linked: str, request: pytest.FixtureRequest
) -> None:
    host = tmp_path / "host-secret.yml"
    host.write_text("properties:\n  - {name: x, default: HOST-SECRET-MARKER}\n")
    remote = step_repo(tmp_path / "evil", "evil", 'echo "x=$WERCKER_EVIL_X"\n')
    commit_symlink(remote, linked, str(host))
    yml = "build:\n  steps:\n    - acme/evil\n"
    got = run_build(tmp_path, "local", yml, {"acme/evil": source(remote)}, request)
    assert got["result"] in ("failed", "errored")
    assert f"{linked} is a symlink" in got["statuses"]["build"], got["statuses"]
    assert "HOST-SECRET-MARKER" not in got["log"] + str(got["statuses"])
