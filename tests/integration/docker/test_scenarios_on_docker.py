"""Runner parity: the golden scenarios (``tests/scenarios/*.yml``, written for the local
runner) run on the docker runner through ``wercker-bot run``, with the busybox box added,
must end the same way and print the same key lines."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.cli import EXIT_ERRORED, EXIT_FAILED, main
from tests.harness.dockerd import Dockerd
from tests.integration.docker.conftest import Registry

SCENARIOS = sorted((Path(__file__).parents[2] / "scenarios").glob("*.yml"))
# Minutes-long by design; the docker runner's timeouts have their own fast test.
SLOW = {"timeout"}
EXIT = {"passed": 0, "failed": EXIT_FAILED, "errored": EXIT_ERRORED}


def _toml_value(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(str(value))


def _config(tmp_path: Path, dockerd: Dockerd, repo: dict[str, Any]) -> Path:
    lines = [
        f"data_dir = {json.dumps(str(tmp_path / 'data'))}",
        "[runner]",
        'kind = "docker"',
        f"docker_host = {json.dumps(dockerd.host)}",
        '[repos."acme/app"]',
        'clone_url = "https://example.invalid/acme/app.git"',
    ]
    lines += [f"{k} = {_toml_value(v)}" for k, v in repo.items() if not isinstance(v, dict)]
    for table in ("env", "secrets"):
        if repo.get(table):
            lines.append(f'[repos."acme/app".{table}]')
            lines += [f"{k} = {_toml_value(v)}" for k, v in repo[table].items()]
    path = tmp_path / "config.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_scenario_ends_the_same_on_the_docker_runner(
    path: Path,
    tmp_path: Path,
    busybox_box: Any,
    box_registry: Registry,
    dockerd: Dockerd,
    capsys: pytest.CaptureFixture[str],
) -> None:
    if path.stem in SLOW:
        pytest.skip(f"scenario {path.stem} takes minutes by design")
    spec = yaml.safe_load(path.read_text())
    if spec.get("wercker.yml") is None:
        pytest.skip(f"scenario {path.stem} has no wercker.yml: nothing reaches a runner")
    text = spec["wercker.yml"].replace("{registry}", box_registry.host)
    if "internal/docker-build" in text or spec.get("runner") == "local":
        pytest.skip(f"scenario {path.stem} is about the local runner by design")
    if not any(line.startswith("box:") for line in text.splitlines()):
        text = f"box: {busybox_box}\n{text}"
    src = tmp_path / "src"
    src.mkdir()
    (src / "wercker.yml").write_text(text)
    for name, content in (spec.get("files") or {}).items():
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        (src / name).write_text(content)
    config = _config(tmp_path, dockerd, spec.get("config") or {})
    code = main(
        ["run", str(src), "--config", str(config), "--runner", "docker", "--repo", "acme/app",
         "--branch", spec.get("branch", "main")]
    )  # fmt: skip
    out = capsys.readouterr().out
    expect = spec["expect"]
    assert code == EXIT[expect["result"]], out
    for line in expect.get("log", []):
        assert line.replace("{registry}", box_registry.host) in out, (line, out)
    for line in expect.get("not_log", []):
        assert line not in out, (line, out)
