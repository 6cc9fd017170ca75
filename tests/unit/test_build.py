"""Attempt orchestration: what one attempt decides and records."""

from __future__ import annotations

from pathlib import Path

import pytest

import bot.build
from tests.integration.test_scenarios import run_scenario


def test_a_crash_in_deploy_keeps_builds_success(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = bot.build.run_pipeline

    def flaky(spec, *args, **kwargs):  # type: ignore[no-untyped-def]
        if spec.name == "deploy":
            raise OSError("disk full")
        return real(spec, *args, **kwargs)

    monkeypatch.setattr(bot.build, "run_pipeline", flaky)
    yml = "build:\n  steps:\n    - script:\n        code: 'true'\n"
    yml += "deploy:\n  steps:\n    - script:\n        code: 'true'\n"
    got = run_scenario(tmp_path, {"wercker.yml": yml})
    assert got["result"] == "errored"
    assert got["statuses"]["build"].startswith("success")
    assert got["statuses"]["deploy"].startswith("error: internal error: OSError")
    states = [p["state"] for p in got["detail"]["attempts"][0]["pipelines"]]
    assert "running" not in states
