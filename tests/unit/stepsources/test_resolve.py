"""``bot.stepsources.resolve``: ``StepSources`` picks a configured source (git or path, by
version range) before the built-in library, and refuses a hostile package."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.logs import MemoryLog
from bot.stepsources import Property
from bot.stepsources.config import parse_steps
from bot.stepsources.gitcache import GitCache
from bot.stepsources.resolve import StepSources, Unresolved
from tests.harness.gitrepo import git
from tests.harness.steprepo import commit_symlink, manifest, source, step_repo
from tests.unit.stepsources.helpers import package


def _library(tmp_path: Path) -> Path:
    lib = tmp_path / "library"
    package(
        lib / "npm-install",
        {"step.yml": manifest("npm-install", {"clear": "false"}), "run.sh": "echo built-in\n"},
    )
    return lib


def test_the_built_in_library_serves_wercker_ids(tmp_path: Path) -> None:
    sources = StepSources(library=_library(tmp_path))
    log = MemoryLog()
    for text in ("npm-install", "wercker/npm-install", "wercker/npm-install@1.0.0"):
        package = sources.resolve(text, log)
        assert package.directory == tmp_path / "library" / "npm-install"
        assert package.origin == "the built-in library" and package.commit is None
        assert package.properties == (Property("clear", "false"),)
    assert (
        "step npm-install: wercker/npm-install version 1.0.0 from the built-in library" in log.text
    )
    with pytest.raises(Unresolved) as err:
        sources.resolve("acme/npm-install", log)
    assert '[steps] "acme/npm-install" = { git = ' in str(err.value)


def test_pretty_slack_notify_of_any_owner_is_served_by_the_built_in_slack_notifier() -> None:
    """Three owners published a pretty-slack-notify; the library's slack-notifier takes its
    options. Only that name is served for other owners."""
    sources = StepSources()
    log = MemoryLog()
    for text in ("pasonatquila/pretty-slack-notify@0.3.6", "wantedly/pretty-slack-notify"):
        package = sources.resolve(text, log)
        assert package.directory.name == "slack-notifier"
        assert package.origin == "the built-in library (slack-notifier)"
    with pytest.raises(Unresolved):
        sources.resolve("acme/slack-notifier", log)


def test_a_configured_source_overrides_a_built_in_step(tmp_path: Path) -> None:
    remote = step_repo(tmp_path / "npm", "npm-install", "echo mine\n")
    steps = parse_steps({"wercker/npm-install": source(remote)}, tmp_path)
    sources = StepSources(steps, GitCache(tmp_path / "cache"), library=_library(tmp_path))
    log = MemoryLog()
    package = sources.resolve("npm-install", log)
    assert (package.directory / "run.sh").read_text() == "echo mine\n"
    sha = git(remote.work, "rev-parse", "HEAD")
    assert package.commit == sha
    assert f"from git {remote.url} main at {sha}" in log.text


def test_a_ranged_source_serves_only_its_versions(tmp_path: Path) -> None:
    one = package(tmp_path / "one", {"run.sh": "echo one\n"})
    two = package(tmp_path / "two", {"run.sh": "echo two\n"})
    steps = parse_steps({"acme/x@^1": {"path": str(one)}, "acme/x": {"path": str(two)}}, tmp_path)
    sources = StepSources(steps, library=tmp_path / "none")
    log = MemoryLog()
    assert sources.resolve("acme/x@1.4.0", log).directory == one
    assert sources.resolve("acme/x@2.0.0", log).directory == two
    assert sources.resolve("acme/x", log).directory == one  # any version: the ranged one


def test_a_hostile_step_repository_is_refused_at_resolution(tmp_path: Path) -> None:
    host = tmp_path / "host-file"
    host.write_text("TOPSECRET\n")
    remote = step_repo(tmp_path / "evil", "evil", "echo hi\n")
    commit_symlink(remote, "run.sh", str(host))
    steps = parse_steps({"acme/evil": source(remote)}, tmp_path)
    sources = StepSources(steps, GitCache(tmp_path / "cache"), library=tmp_path / "none")
    log = MemoryLog()
    with pytest.raises(Unresolved) as err:
        sources.resolve("acme/evil", log)
    assert '[steps] "acme/evil"' in str(err.value) and "run.sh is a symlink" in str(err.value)
    assert "TOPSECRET" not in str(err.value) + log.text


def test_text_that_is_no_step_id_is_unresolved_with_a_hint(tmp_path: Path) -> None:
    with pytest.raises(Unresolved) as err:
        StepSources(library=tmp_path).resolve("npm test", MemoryLog())
    assert str(err.value) == "'npm test' is not a step id"
    assert err.value.hint == "write it as owner/name or owner/name@version"


def test_a_git_source_without_a_cache_is_not_fetched(tmp_path: Path) -> None:
    steps = parse_steps({"acme/x": {"git": "https://git.example/x.git"}}, tmp_path)
    with pytest.raises(Unresolved, match="comes from git, which is not fetched here"):
        StepSources(steps, None, library=tmp_path).resolve("acme/x", MemoryLog())


def test_a_package_of_another_version_than_asked_is_used_with_a_warning(tmp_path: Path) -> None:
    pkg = package(tmp_path / "x", {"step.yml": manifest("x", {}), "run.sh": "echo x\n"})
    steps = parse_steps({"acme/x": {"path": str(pkg)}}, tmp_path)
    log = MemoryLog()
    got = StepSources(steps, library=tmp_path / "none").resolve("acme/x@2.0.0", log)
    assert got.directory == pkg.resolve() and got.origin == f"path {pkg.resolve()}"
    assert got.version == "1.0.0"  # what the manifest says
    assert "step acme/x@2.0.0: acme/x version 1.0.0 from path" in log.text
    assert "asked for version 2.0.0; the package says 1.0.0" in log.text
