"""The packages of the built-in step library (``steps/library``) as packages: the Wercker step
format (wercker-steps.md §1.1: ``step.yml`` with name, semver version, summary and a list of
properties, plus a regular ``run.sh``), read by the bot's own loader and resolver; each
``run.sh`` is valid POSIX sh and bash, shellcheck-clean where shellcheck is installed, and
reads every property it declares. What the steps do is tested in
``tests/integration/test_step_library.py``."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from bot.logs import MemoryLog
from bot.stepsources.manifest import inspect_package
from bot.stepsources.resolve import LIBRARY, StepSources

REQUIRED = (
    "install-packages", "npm-install", "npm-test", "pip-install", "virtualenv", "bundle-install",
    "glide-install", "setup-go-workspace", "add-ssh-key", "add-to-known_hosts", "create-file",
    "bash-template", "shellcheck", "golint", "github-create-release", "github-upload-asset",
    "slack-notifier", "s3sync", "kubectl",
)  # fmt: skip
PACKAGES = sorted(p.name for p in LIBRARY.iterdir() if p.is_dir())
SEMVER = re.compile(r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?")
# Steps that read (some) options through a helper taking the option's name, not the variable.
INDIRECT = {
    "slack-notifier": lambda prop: f"_wl_slack_opt {prop.upper().replace('-', '_')}",
    "bundle-install": lambda prop: prop,
    "kubectl": lambda prop: f" {prop}",
}


def test_the_library_has_the_most_used_steps() -> None:
    assert set(REQUIRED) <= set(PACKAGES)


@pytest.mark.parametrize("name", PACKAGES)
def test_manifest_is_a_wercker_step_yml(name: str) -> None:
    manifest = yaml.safe_load((LIBRARY / name / "step.yml").read_text())
    assert manifest["name"] == name
    assert SEMVER.fullmatch(str(manifest["version"]))
    assert str(manifest["summary"]).strip()
    properties = manifest["properties"]
    assert isinstance(properties, list)
    for prop in properties:
        assert set(prop) <= {"name", "type", "required", "default"}, prop
        assert prop["name"] and prop["type"] in {"string", "bool", "boolean"}, prop
        assert isinstance(prop["required"], bool), prop
    assert (LIBRARY / name / "run.sh").is_file()
    assert not (LIBRARY / name / "run.sh").is_symlink()


@pytest.mark.parametrize("name", PACKAGES)
def test_the_bots_loader_reads_it_without_warnings(name: str) -> None:
    info = inspect_package(LIBRARY / name)
    assert info.manifest == "step.yml"
    assert info.warnings == []
    assert SEMVER.fullmatch(info.version)
    declared = yaml.safe_load((LIBRARY / name / "step.yml").read_text())["properties"]
    assert [p.name for p in info.properties] == [p["name"] for p in declared]


def test_defaults_are_the_raw_yaml_text() -> None:
    """wercker-steps.md §1.1: ``default: true`` is the text ``true``, ``"$GOPATH"`` stays
    unexpanded (the box's shell expands it when the option is exported)."""

    def defaults(name: str) -> dict[str, str]:
        return {p.name: p.default for p in inspect_package(LIBRARY / name).properties}

    assert defaults("npm-install")["use-cache"] == "true"
    assert defaults("pip-install")["cleanup_wheel_cache"] == "false"
    assert defaults("setup-go-workspace")["gopath"] == "$GOPATH"
    assert defaults("bundle-install")["version"] == ">=1.5.2"
    assert defaults("shellcheck")["separator"] == " "
    assert defaults("s3sync")["opts"] == "--acl-public"


@pytest.mark.parametrize("name", REQUIRED)
def test_ids_resolve_to_the_built_in_package(name: str) -> None:
    sources = StepSources()
    for text in (name, f"wercker/{name}", f"wercker/{name}@1.0.0"):
        package = sources.resolve(text, MemoryLog())
        assert package.directory == LIBRARY / name
        assert package.origin == "the built-in library"


@pytest.mark.parametrize("name", PACKAGES)
def test_run_sh_reads_every_declared_property(name: str) -> None:
    text = (LIBRARY / name / "run.sh").read_text()
    prefix = "WERCKER_" + name.upper().replace("-", "_") + "_"
    for prop in inspect_package(LIBRARY / name).properties:
        variable = prefix + prop.name.upper().replace("-", "_")
        indirect = INDIRECT.get(name)
        assert variable in text or (indirect and indirect(prop.name) in text), (name, prop.name)


@pytest.mark.parametrize("shell", ["sh", "bash"])
@pytest.mark.parametrize("name", PACKAGES)
def test_run_sh_parses(name: str, shell: str) -> None:
    if shutil.which(shell) is None:
        pytest.skip(f"no {shell}")
    for script in sorted((LIBRARY / name).glob("*.sh")):
        done = subprocess.run([shell, "-n", str(script)], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="needs shellcheck")
@pytest.mark.parametrize("name", PACKAGES)
def test_run_sh_is_shellcheck_clean(name: str) -> None:
    scripts = [str(p) for p in sorted((LIBRARY / name).glob("*.sh"))]
    done = subprocess.run(["shellcheck", *scripts], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout


def test_scripts_are_sourced_not_executed() -> None:
    """run.sh is sourced in the pipeline shell (§1.4): no shebang that would suggest
    otherwise, and a shellcheck directive naming the shell it is written for."""
    for name in PACKAGES:
        first = (LIBRARY / name / "run.sh").read_text().splitlines()[0]
        assert first == "# shellcheck shell=sh", name


def test_readme_lists_no_step_that_is_missing() -> None:
    readme = Path(LIBRARY / "README.md").read_text()
    assert "wercker/<name>" in readme
