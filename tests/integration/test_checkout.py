"""Checkout against real git remotes: exact sha, shallow, no credential on disk, cleanup."""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path

import pytest

from bot.checkout import (
    Ancestry,
    ancestry,
    auth_env,
    check_ref_format,
    checkout,
    split_credentials,
)
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


def _header_config(env: dict[str, str]) -> tuple[str, str]:
    return env["GIT_CONFIG_KEY_0"], env["GIT_CONFIG_VALUE_0"]


def test_token_header_is_keyed_on_host_and_port() -> None:
    basic = base64.b64encode(b"x-access-token:tok").decode()
    key, value = _header_config(auth_env("https://ghe.example.com:8443/acme/app.git", "tok", None))
    assert key == "http.https://ghe.example.com:8443/.extraheader"
    assert value == f"AUTHORIZATION: basic {basic}"
    key, _ = _header_config(auth_env("https://github.com/acme/app.git", "tok", None))
    assert key == "http.https://github.com/.extraheader"
    # Never over plain HTTP.
    assert "GIT_CONFIG_KEY_0" not in auth_env("http://ghe.example.com:8080/a.git", "tok", None)


def test_url_credentials_keep_the_port_and_an_ipv6_host() -> None:
    url, user, password = split_credentials("https://ci:pw@[::1]:8443/acme/app.git")
    assert (url, user, password) == ("https://[::1]:8443/acme/app.git", "ci", "pw")
    key, _ = _header_config(auth_env("https://ci:pw@[::1]:8443/acme/app.git", "", None))
    assert key == "http.https://[::1]:8443/.extraheader"


def test_ancestry_of_queued_commits(tmp_path: Path) -> None:
    remote = make_remote(tmp_path / "git")
    s = remote.commit({"v": "s"})
    a = remote.commit({"v": "a"})
    b = remote.commit({"v": "b"})
    git(remote.work, "checkout", "-q", "--orphan", "other")
    unrelated = remote.commit({"v": "x"}, branch="other")
    dest = tmp_path / "co"
    log = MemoryLog()
    checkout(remote.url, a, "refs/heads/main", dest, log)
    got = ancestry(dest, a, [b, s, unrelated, "f" * 40, a], log, clone_url=remote.url)
    assert got == Ancestry(descendants=(b,), ancestors=(s,))
    assert ancestry(dest, a, [], log) == Ancestry((), ())


@pytest.mark.parametrize(
    ("ref", "problem"),
    [
        ("refs/heads/main", None),
        ("refs/heads/feature/login-2.0_x", None),
        ("refs/tags/v1.0", None),
        ("refs/heads/..", "it contains '..'"),
        ("refs/heads/a\nb", "it contains the control character '\\n'"),
        ("refs/heads/a\x7fb", "it contains the control character '\\x7f'"),
        ("refs/heads/a b", "it contains ' '"),
        ("refs/heads/a~1", "it contains '~'"),
        ("refs/heads/a^", "it contains '^'"),
        ("refs/heads/a:b", "it contains ':'"),
        ("refs/heads/a?", "it contains '?'"),
        ("refs/heads/a*", "it contains '*'"),
        ("refs/heads/a[b", "it contains '['"),
        ("refs/heads/a\\b", "it contains '\\\\'"),
        ("refs/heads//a", "it contains '//'"),
        ("refs/heads/a/", "it starts or ends with '/'"),
        ("/refs/heads/a", "it starts or ends with '/'"),
        ("refs/heads/a.", "it ends with '.'"),
        ("refs/heads/.hidden", "its part '.hidden' starts with '.'"),
        ("refs/heads/a.lock", "its part 'a.lock' ends with '.lock'"),
        ("refs/heads/a.lock/b", "its part 'a.lock' ends with '.lock'"),
        ("refs/heads/a@{1}", "it contains '@{'"),
        ("@", "it is '@'"),
        ("", "it is empty"),
    ],
)
def test_check_ref_format_follows_git(ref: str, problem: str | None) -> None:
    assert check_ref_format(ref) == problem
    if ref:
        git_says = subprocess.run(["git", "check-ref-format", ref], capture_output=True)
        assert (git_says.returncode == 0) == (problem is None), ref
