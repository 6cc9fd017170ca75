"""Copying a host directory into a box (``bot/runners/staging.py``, ``Session.put_dir``):
links stay links, a linked run.sh is refused, the copy is bounded, and the docker staging
archive is root-owned. Moved here from tests/unit/steps/test_package.py."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from bot.errors import InfrastructureError, StepConfigError
from bot.logs import MemoryLog
from bot.runners import staging
from bot.runners.base import Workspace
from bot.runners.local import LocalRunner, LocalSession
from bot.runners.sandbox import find_sandbox
from bot.runners.staging import tar_dir


@pytest.fixture(params=["sandboxed", "unsafe"])
def session(tmp_path: Path, request: pytest.FixtureRequest) -> LocalSession:
    sandbox = None
    if request.param == "sandboxed":
        sandbox, why = find_sandbox()
        assert sandbox is not None, f"bubblewrap is needed for these tests: {why}"
    ws = Workspace.create(tmp_path / "ws", tmp_path / "cache")
    return LocalRunner(sandbox).open(None, {}, ws, None, MemoryLog())


def package(tmp_path: Path, extra: dict[str, str] | None = None) -> Path:
    directory = tmp_path / "pkg"
    directory.mkdir(parents=True)
    (directory / "run.sh").write_text("true\n")
    for name, text in (extra or {}).items():
        (directory / name).parent.mkdir(parents=True, exist_ok=True)
        (directory / name).write_text(text)
    return directory


def test_staging_copies_links_as_links_and_read_only_files(
    session: LocalSession, tmp_path: Path
) -> None:
    pkg = package(tmp_path, extra={"lib/x.sh": "x"})
    os.symlink("/etc/hostname", pkg / "host")
    root = Path(session.put_dir(pkg, "my-step-1"))
    assert root.parent == session.home
    assert (root / "host").is_symlink() and os.readlink(root / "host") == "/etc/hostname"
    assert (root / "lib" / "x.sh").read_text() == "x"
    assert not os.access(root / "run.sh", os.W_OK) or os.geteuid() == 0


def test_a_linked_run_sh_is_refused_when_staging(session: LocalSession, tmp_path: Path) -> None:
    pkg = package(tmp_path)
    (pkg / "run.sh").unlink()
    os.symlink("/etc/passwd", pkg / "run.sh")
    with pytest.raises(StepConfigError, match="not a regular file"):
        session.put_dir(pkg, "my-step-2")


def test_a_name_that_is_no_plain_component_is_refused(
    session: LocalSession, tmp_path: Path
) -> None:
    pkg = package(tmp_path)
    for name in ("", ".", "..", "a/b", "../x"):
        with pytest.raises(InfrastructureError, match="not a plain name"):
            session.put_dir(pkg, name)


def test_the_copy_is_bounded_in_files(
    session: LocalSession, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pkg = package(tmp_path, extra={"a": "1", "b": "2", "c": "3"})
    monkeypatch.setattr(staging, "MAX_STAGED_FILES", 2)
    with pytest.raises(StepConfigError, match="over 2 files"):
        session.put_dir(pkg, "my-step-3")


def test_the_copy_is_bounded_in_bytes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pkg = package(tmp_path, extra={"big": "x" * 100})
    monkeypatch.setattr(staging, "MAX_STAGED_BYTES", 50)
    with pytest.raises(StepConfigError, match="MiB"):
        tar_dir(pkg, "s-1")


def test_the_docker_archive_is_root_owned_with_links_kept(tmp_path: Path) -> None:
    pkg = package(tmp_path, extra={"lib/x.sh": "x"})
    os.symlink("../../etc", pkg / "up")
    with tarfile.open(fileobj=io.BytesIO(tar_dir(pkg, "s-1"))) as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert set(members) == {"s-1", "s-1/lib", "s-1/lib/x.sh", "s-1/run.sh", "s-1/up"}
    assert members["s-1/up"].issym() and members["s-1/up"].linkname == "../../etc"
    assert all(m.uid == 0 and m.gid == 0 for m in members.values())
