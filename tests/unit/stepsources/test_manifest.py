"""``bot.stepsources.manifest``: both manifest generations, broken manifests, and package
files that are links to host files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bot.stepsources import Property
from bot.stepsources.manifest import PackageError, inspect_package, parse_manifest
from tests.unit.stepsources.helpers import package


def test_both_manifest_generations_keep_defaults_as_raw_text() -> None:
    gen2 = (
        b"name: x\nversion: 1.0.0\nproperties:\n  - {name: a, default: true}\n"
        b"  - {name: b, default: 1.10}\n  - {name: c, default: ~}\n  - {name: d}\n"
    )
    gen1 = (
        b"name: x\nversion: 0.1.0\nproperties:\n  a: {type: bool, default: yes}\n"
        b"  b:\n    default: $GOPATH\n"
    )
    assert parse_manifest(gen2, generation="step.yml") == (
        "1.0.0",
        (Property("a", "true"), Property("b", "1.10"), Property("c", ""), Property("d", "")),
    )
    assert parse_manifest(gen1, generation="wercker-step.yml") == (
        "0.1.0", (Property("a", "yes"), Property("b", "$GOPATH")),
    )  # fmt: skip


def test_a_broken_manifest_is_a_warning_and_no_defaults(tmp_path: Path) -> None:
    info = inspect_package(package(tmp_path / "p", {"step.yml": "properties: [\n", "run.sh": ""}))
    assert info.manifest is None and info.properties == ()
    assert "step.yml cannot be read" in info.warnings[0]


def test_a_package_needs_a_regular_run_sh(tmp_path: Path) -> None:
    with pytest.raises(PackageError, match=r"no run\.sh"):
        inspect_package(package(tmp_path / "p", {"step.yml": "name: x\n"}))


@pytest.mark.parametrize("linked", ["step.yml", "wercker-step.yml", "run.sh"])
def test_hostile_links_to_host_files_are_refused_not_read(tmp_path: Path, linked: str) -> None:
    host = tmp_path / "host-secret"
    host.write_text("properties:\n  - {name: leaked, default: TOPSECRET}\n")
    pkg = package(tmp_path / "p", {"run.sh": "echo hi\n"})
    (pkg / linked).unlink(missing_ok=True)
    os.symlink(host, pkg / linked)
    with pytest.raises(PackageError) as err:
        inspect_package(pkg)
    assert "symlink" in str(err.value) and "TOPSECRET" not in str(err.value)
