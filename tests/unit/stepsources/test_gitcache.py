"""``bot.stepsources.gitcache``: pinning refs of real repositories served over ``file://`` (and
one private one over HTTP), fetching only when a ref moved, links kept as links."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bot.stepsources.gitcache import GitCache, SourceError
from tests.harness.gitrepo import git
from tests.harness.steprepo import commit_symlink, step_repo


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
