"""Golden scenarios: a wercker.yml plus the expected step results, statuses and key log
lines, run through the real orchestration (git checkout, store, local runner, outbox).

Each ``tests/scenarios/*.yml`` holds:
  branch, config (the repo's table in the bot config), files (extra files to commit),
  wercker.yml (the text), and expect: result, statuses {pipeline: "state: description
  prefix"}, steps {pipeline: ["phase name state exit", ...]}, log (lines that must appear),
  not_log (text that must not appear).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.build import execute
from bot.settings import parse_settings
from bot.store.rows import NewPush, StepRow
from bot.wercker.selection import planned_pipelines
from bot.wiring import build_services
from tests.harness.gitrepo import make_remote
from tests.harness.registry import RegistryServer

SCENARIOS = sorted((Path(__file__).parent.parent / "scenarios").glob("*.yml"))


def run_scenario(tmp_path: Path, spec: dict[str, Any], registries: dict | None = None) -> dict:
    remote = make_remote(tmp_path / "git")
    branch = spec.get("branch", "main")
    files = dict(spec.get("files", {}))
    if spec.get("wercker.yml") is not None:
        files["wercker.yml"] = spec["wercker.yml"]
    sha = remote.commit(files, branch=branch)
    repo_cfg = {"clone_url": remote.url, **spec.get("config", {})}
    settings = parse_settings(
        {
            "data_dir": str(tmp_path / "data"),
            "base_url": "http://bot.test",
            "github": {"webhook_secret": "s" * 16, "status_context": "wb"},
            "runner": {"kind": "local"},
            "repos": {"acme/app": repo_cfg},
            "registries": registries or {},
        },
        {},
        base_dir=tmp_path,
    )
    services = build_services(settings)
    repo = settings.repos["acme/app"]
    names = planned_pipelines(repo.pipelines, branch)
    intake = services.store.record_push(
        NewPush(
            hook_id="1",
            delivery_id="d1",
            repo="acme/app",
            ref=f"refs/heads/{branch}",
            branch=branch,
            git_tag="",
            sha=sha,
            before_sha="0" * 40,
            message="m",
            pusher="p",
            html_url="https://github.com/acme/app",
            pipelines=names,
        )
    )
    claim = services.store.claim_next("test")
    assert claim is not None
    result = execute(claim, services)
    detail = services.store.build_detail(intake.build_id or 0)
    assert detail is not None
    attempt = detail.attempts[-1]
    log, _ = services.store.log_text(attempt.id)
    statuses: dict[str, str] = {}
    for row in services.store.statuses_for("acme/app", sha):
        statuses[row.context.split("/", 1)[1]] = f"{row.state}: {row.description}"

    def line(s: StepRow) -> str:
        code = "-" if s.exit_code is None else s.exit_code
        return f"{s.phase} {s.name} {s.state} {code}"

    steps = {p.name: [line(s) for s in p.steps] for p in attempt.pipelines}
    return {
        "result": str(result),
        "statuses": statuses,
        "steps": steps,
        "log": log,
        "detail": detail,
        "sha": sha,
        "services": services,
    }


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_scenario(tmp_path: Path, path: Path, registry_plain: RegistryServer) -> None:
    # "{registry}" in a scenario is the test registry (plain HTTP on loopback).
    spec = yaml.safe_load(path.read_text().replace("{registry}", registry_plain.host))
    got = run_scenario(tmp_path, spec)
    expect = spec["expect"]
    assert got["result"] == expect["result"], got["log"]
    for pipeline, prefix in expect.get("statuses", {}).items():
        assert pipeline in got["statuses"], got["statuses"]
        assert got["statuses"][pipeline].startswith(prefix), (pipeline, got["statuses"])
    assert set(got["statuses"]) == set(expect.get("statuses", got["statuses"]))
    for pipeline, lines in expect.get("steps", {}).items():
        assert got["steps"].get(pipeline) == lines, (pipeline, got["steps"], got["log"])
    for line in expect.get("log", []):
        assert line in got["log"], f"missing log line {line!r} in:\n{got['log']}"
    for text in expect.get("not_log", []):
        assert text not in got["log"]
    for status in got["statuses"].values():
        assert not status.startswith("pending"), got["statuses"]
