"""``wercker-bot check FILE`` imports only the frontend (``bot.wercker``) and what it strictly
needs: editors and pre-commit hooks run it on every save, so it must not pay for the docker
SDK, requests, boto3, SQLAlchemy, Flask, GitPython, waitress or the pushers.

Each case runs in a fresh interpreter (``sys.modules`` of this test process already holds the
whole bot). The time itself is reported by ``bench/check.py``, never asserted here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

HEAVY = (
    "docker",
    "requests",
    "urllib3",
    "boto3",
    "botocore",
    "sqlalchemy",
    "flask",
    "werkzeug",
    "git",
    "waitress",
    "bot.pushers.registry.client",
    # The frontend's records are plain classes and tuples: dataclasses loads inspect, ast
    # and dis (~20 ms of every save).
    "dataclasses",
    "difflib",
)
# The only modules of the bot a check may load: the frontend, and dependency-free leaves.
ALLOWED_BOT = {
    "bot",
    "bot.cli",
    "bot.errors",
    "bot.imageref",
    "bot.stepsources",
    "bot.web",
    "bot.web.limits",
}

# Touches every lint path that once reached below the frontend: box image references (with
# a host, a tag option, a digest), push steps, services and the runner-specific lint.
WERCKER_YML = """\
box:
  id: registry.example.com:5000/team/Base:1.0
  tag: "2.0"
services:
  - postgres:15
build:
  box: quay.io/acme/builder@sha256:0000000000000000000000000000000000000000000000000000000000000000
  steps:
    - script:
        name: test
        code: make test
    - internal/docker-build:
        dockerfile: Dockerfile
        image-name: app
deploy:
  steps:
    - internal/docker-push:
        repository: acme/app
        tag: $WERCKER_GIT_BRANCH
        username: $USER
        password: $PASSWORD
    - internal/docker-scratch-push:
        registry: https://index.docker.io/v2
        repository: Acme/App:latest
"""

PROBE = textwrap.dedent(
    """
    import json, sys
    import bot.cli
    code = bot.cli.main(sys.argv[1:])
    print(json.dumps({"code": code, "modules": sorted(sys.modules)}), file=sys.stderr)
    """
)


def modules_after(args: list[str], cwd: Path) -> tuple[int, set[str]]:
    env = {k: v for k, v in os.environ.items() if k != "WERCKER_BOT_CONFIG"}
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    report = json.loads(done.stderr.strip().splitlines()[-1])
    return report["code"], set(report["modules"])


def below_the_frontend(modules: set[str]) -> set[str]:
    """The bot's own modules (and ``steps``) outside ``bot.wercker``."""
    ours = {m for m in modules if m.split(".")[0] in ("bot", "steps")}
    return {m for m in ours if m != "bot.wercker" and not m.startswith("bot.wercker.")}


def heavy_in(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if m in HEAVY or m.startswith(tuple(h + "." for h in HEAVY)))


@pytest.mark.parametrize(
    "extra",
    [[], ["--format", "json"], ["--runner", "docker"], ["--runner", "local"]],
    ids=["text", "json", "runner-docker", "runner-local"],
)
def test_check_imports_only_the_frontend(tmp_path: Path, extra: list[str]) -> None:
    path = tmp_path / "wercker.yml"
    path.write_text(WERCKER_YML)
    code, modules = modules_after(["check", str(path), *extra], tmp_path)
    assert code == 1  # the file has errors: lint really ran (box image, docker-build, push)
    assert heavy_in(modules) == []
    below = below_the_frontend(modules)
    assert below <= ALLOWED_BOT, sorted(below)


def test_check_of_a_directory_and_of_broken_yaml_import_only_the_frontend(
    tmp_path: Path,
) -> None:
    (tmp_path / "wercker.yml").write_text("build:\n  steps: [\n")
    code, modules = modules_after(["check", str(tmp_path)], tmp_path)
    assert code == 1
    assert heavy_in(modules) == []
    assert "bot.pushers" not in modules and "steps" not in modules


def test_the_frontend_imports_nothing_below_it(tmp_path: Path) -> None:
    """Every module of ``bot.wercker`` (``plan`` and ``expand`` too, which the runner uses)
    loads no other part of the bot at run time: annotations only name ``bot.logs`` and
    ``bot.settings``."""
    probe = (
        "import json, sys\n"
        "import bot.wercker.expand, bot.wercker.lint, bot.wercker.model, bot.wercker.nodes\n"
        "import bot.wercker.parse, bot.wercker.selection, bot.wercker.schema\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    modules = set(json.loads(done.stdout))
    below = below_the_frontend(modules)
    assert below <= {"bot", "bot.errors", "bot.imageref"}, sorted(below)
    assert heavy_in(modules) == []
