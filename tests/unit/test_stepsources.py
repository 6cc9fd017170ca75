"""Step sources (``bot.stepsources``): step ids, version ranges, the ``[steps]`` table, the
git cache (real repositories served over ``file://``), manifests and the resolver."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bot.errors import ConfigError
from bot.logs import MemoryLog
from bot.settings import parse_settings
from bot.stepsources import Property, StepId, parse_step_id
from bot.stepsources.config import parse_steps
from bot.stepsources.gitcache import GitCache, SourceError
from bot.stepsources.manifest import PackageError, inspect_package, parse_manifest
from bot.stepsources.resolve import StepSources, Unresolved
from bot.stepsources.versions import satisfies
from tests.harness.gitrepo import git
from tests.harness.steprepo import commit_symlink, manifest, source, step_repo

# -- ids and ranges --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("npm-install", StepId("wercker", "npm-install")),
        ("wercker/npm-install", StepId("wercker", "npm-install")),
        ("Owner/Name@1.2.3", StepId("owner", "name", "1.2.3")),
        ("ps/pretty-slack-notify@0.3.6", StepId("ps", "pretty-slack-notify", "0.3.6")),
        ("npm test", None),
        ("a/b/c", None),
        ("owner/name@", None),
        ("", None),
    ],
)  # fmt: skip
def test_step_ids_are_normalised_as_wercker_did(text: str, expected: StepId | None) -> None:
    assert parse_step_id(text) == expected


@pytest.mark.parametrize(
    ("version", "wanted", "ok"),
    [
        ("1.2.3", "^1.2", True), ("2.0.0", "^1.2", False), ("0.3.9", "^0.3", True),
        ("0.4.0", "^0.3", False), ("1.2.9", "~1.2.0", True), ("1.3.0", "~1.2.0", False),
        ("1.9.0", "1", True), ("1.2.3", "1.2.3", True), ("1.2.4", "1.2.3", False),
        ("1.5.0", ">=1.0 <2", True), ("2.0.0", ">=1.0, <2", False), ("*", "^1", True),
        ("3.0.0", "*", True),
    ],
)  # fmt: skip
def test_version_ranges(version: str, wanted: str, ok: bool) -> None:
    assert satisfies(version, wanted) is ok


# -- the [steps] table -----------------------------------------------------------------------


def test_steps_table_parses_git_and_path_sources(tmp_path: Path) -> None:
    got = parse_steps(
        {
            "acme/greet@^1.2": {"git": "https://u:pw@git.example/greet.git", "ref": "v1"},
            "npm-install": {"path": "steps/npm"},
        },
        tmp_path,
    )
    assert (got[0].id, got[0].versions, got[0].ref, got[0].password) == (
        "acme/greet",
        "^1.2",
        "v1",
        "pw",
    )
    assert (got[1].id, got[1].path, got[1].ref) == (
        "wercker/npm-install",
        tmp_path / "steps/npm",
        "HEAD",
    )


@pytest.mark.parametrize(
    ("table", "key"),
    [
        ({"npm test": {"path": "/x"}}, "steps.'npm test'"),
        ({"a/b": "https://x"}, "steps.'a/b'"),
        ({"a/b": {"git": "https://x", "path": "/x"}}, "steps.'a/b'"),
        ({"a/b": {"gti": "https://x"}}, "steps.'a/b'.gti"),
        ({"a/b": {"path": "/x", "ref": "main"}}, "steps.'a/b'.ref"),
        ({"a/b@^x": {"path": "/x"}}, "steps.'a/b@^x'"),
    ],
)  # fmt: skip
def test_bad_steps_entries_name_their_key(table: dict, key: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        parse_settings({"steps": table}, {}, base_dir=tmp_path)
    assert key in str(err.value)


def test_a_password_in_a_step_source_url_is_a_secret(tmp_path: Path) -> None:
    settings = parse_settings(
        {"steps": {"a/b": {"git": "https://u:hunter22@git.example/b.git"}}}, {}, base_dir=tmp_path
    )
    assert "hunter22" in settings.secret_values()


# -- manifests -------------------------------------------------------------------------------


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


def _package(root: Path, files: dict[str, str]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (root / name).write_text(text)
    return root


def test_a_broken_manifest_is_a_warning_and_no_defaults(tmp_path: Path) -> None:
    info = inspect_package(_package(tmp_path / "p", {"step.yml": "properties: [\n", "run.sh": ""}))
    assert info.manifest is None and info.properties == ()
    assert "step.yml cannot be read" in info.warnings[0]


def test_a_package_needs_a_regular_run_sh(tmp_path: Path) -> None:
    with pytest.raises(PackageError, match=r"no run\.sh"):
        inspect_package(_package(tmp_path / "p", {"step.yml": "name: x\n"}))


@pytest.mark.parametrize("linked", ["step.yml", "wercker-step.yml", "run.sh"])
def test_hostile_links_to_host_files_are_refused_not_read(tmp_path: Path, linked: str) -> None:
    host = tmp_path / "host-secret"
    host.write_text("properties:\n  - {name: leaked, default: TOPSECRET}\n")
    pkg = _package(tmp_path / "p", {"run.sh": "echo hi\n"})
    (pkg / linked).unlink(missing_ok=True)
    os.symlink(host, pkg / linked)
    with pytest.raises(PackageError) as err:
        inspect_package(pkg)
    assert "symlink" in str(err.value) and "TOPSECRET" not in str(err.value)


# -- the git cache ---------------------------------------------------------------------------


def test_a_ref_that_did_not_move_is_not_fetched_again_and_a_moved_one_is(tmp_path: Path) -> None:
    remote = step_repo(tmp_path / "greet", "greet", "echo one\n")
    first = git(remote.work, "rev-parse", "HEAD")
    cache = GitCache(tmp_path / "cache")
    sha, directory = cache.pin(remote.url, "main")
    assert sha == first and (directory / "run.sh").read_text() == "echo one\n"
    assert cache.fetches == 1
    assert cache.pin(remote.url, "main") == (sha, directory)
    assert cache.fetches == 1  # the ref did not move: ls-remote only
    moved = remote.commit({"run.sh": "echo two\n"})
    sha2, directory2 = cache.pin(remote.url, "main")
    assert (sha2, cache.fetches) == (moved, 2)
    assert (directory2 / "run.sh").read_text() == "echo two\n"
    assert (directory / "run.sh").read_text() == "echo one\n"  # a pinned commit never changes
    assert os.access(directory2 / "run.sh", os.X_OK)
    # A full sha already cached needs no network at all: the remote may even be gone.
    remote.bare.rename(tmp_path / "gone.git")
    assert cache.pin(remote.url, first) == (first, directory)


def test_tags_and_head_resolve(tmp_path: Path) -> None:
    remote = step_repo(tmp_path / "greet", "greet", "echo one\n")
    tagged = git(remote.work, "rev-parse", "HEAD")
    git(remote.work, "tag", "-a", "v1.0.0", "-m", "v1")
    git(remote.work, "push", "-q", "origin", "v1.0.0")
    git(remote.bare, "symbolic-ref", "HEAD", "refs/heads/main")
    remote.commit({"run.sh": "echo two\n"})
    cache = GitCache(tmp_path / "cache")
    assert cache.pin(remote.url, "v1.0.0")[0] == tagged  # an annotated tag, peeled
    assert cache.pin(remote.url, "HEAD")[0] == git(remote.work, "rev-parse", "HEAD")


def test_a_missing_ref_or_repository_is_a_clear_error(tmp_path: Path) -> None:
    remote = step_repo(tmp_path / "greet", "greet", "echo one\n")
    cache = GitCache(tmp_path / "cache")
    with pytest.raises(SourceError, match="no branch or tag 'nope'"):
        cache.pin(remote.url, "nope")
    with pytest.raises(SourceError):
        cache.pin(f"file://{tmp_path}/missing.git", "main")


def test_links_in_a_step_repository_stay_links_in_the_cache(tmp_path: Path) -> None:
    remote = step_repo(tmp_path / "greet", "greet", "echo one\n")
    commit_symlink(remote, "etc", "/etc")
    _, directory = GitCache(tmp_path / "cache").pin(remote.url, "main")
    assert (directory / "etc").is_symlink() and os.readlink(directory / "etc") == "/etc"


# -- the resolver ----------------------------------------------------------------------------


def _library(tmp_path: Path) -> Path:
    lib = tmp_path / "library"
    _package(
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
    one = _package(tmp_path / "one", {"run.sh": "echo one\n"})
    two = _package(tmp_path / "two", {"run.sh": "echo two\n"})
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


def test_a_private_step_repository_uses_the_clone_credentials(tmp_path: Path) -> None:
    from tests.harness.githttp import private_git_server

    remote = step_repo(tmp_path / "private", "private", "echo private\n")
    with private_git_server(remote.bare.parent, "x-access-token", "tok-s3cret") as server:
        url = f"http://127.0.0.1:{server.server_address[1]}/{remote.bare.name}"
        with pytest.raises(SourceError) as err:
            GitCache(tmp_path / "anon").pin(url, "main")
        assert "tok-s3cret" not in str(err.value)
        # Credentials in the URL travel as a header (bot.checkout.auth_env), as for a
        # private clone; the [github] token takes the same path for https URLs.
        authed = url.replace("http://", "http://x-access-token:tok-s3cret@")
        cache = GitCache(tmp_path / "cache", token="tok-s3cret")
        _, directory = cache.pin(authed, "main")
        assert (directory / "run.sh").read_text() == "echo private\n"
        config = (tmp_path / "cache").rglob("config")
        assert not any("tok-s3cret" in p.read_text() for p in config if p.is_file())
    assert server.seen and server.seen[-1].lower().startswith("basic ")
