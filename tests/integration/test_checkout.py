"""Checkout against real git remotes: exact sha, shallow, no credential on disk, cleanup."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from bot.checkout import checkout
from bot.errors import CheckoutError
from bot.logs import MemoryLog
from tests.harness.gitrepo import git, make_remote
from tests.integration.test_scenarios import run_scenario


def test_exact_sha_shallow_and_no_token_on_disk(tmp_path: Path) -> None:
    remote = make_remote(tmp_path / "git")
    first = remote.commit({"a.txt": "one"})
    remote.commit({"a.txt": "two"})
    dest = tmp_path / "co"
    token = "ghs_checkoutToken123"
    log = MemoryLog()
    checkout(remote.url, first, "refs/heads/main", dest, log, token=token)
    assert (dest / "a.txt").read_text() == "one"
    assert git(dest, "rev-parse", "HEAD") == first
    assert (dest / ".git" / "shallow").exists()
    on_disk = (dest / ".git" / "config").read_text()
    basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
    assert token not in on_disk and basic not in on_disk and token not in log.text


def test_unknown_sha_is_a_checkout_error(tmp_path: Path) -> None:
    remote = make_remote(tmp_path / "git")
    remote.commit({"a.txt": "one"})
    with pytest.raises(CheckoutError, match="could not fetch"):
        checkout(remote.url, "f" * 40, "refs/heads/main", tmp_path / "co", MemoryLog())


def test_clone_failure_ends_as_error_and_workspaces_are_removed(tmp_path: Path) -> None:
    spec = {
        "wercker.yml": "build:\n  steps:\n    - script:\n        code: 'true'\n",
        "config": {"clone_url": f"file://{tmp_path}/no-such-repo.git"},
    }
    got = run_scenario(tmp_path, spec)
    assert got["result"] == "errored"
    assert got["statuses"]["build"].startswith("error: could not fetch")
    work = tmp_path / "data" / "work"
    assert not work.exists() or list(work.iterdir()) == []


def test_workspace_removed_after_a_passing_build(tmp_path: Path) -> None:
    spec = {"wercker.yml": "build:\n  steps:\n    - script:\n        code: 'true'\n"}
    got = run_scenario(tmp_path, spec)
    assert got["result"] == "passed"
    assert list((tmp_path / "data" / "work").iterdir()) == []
