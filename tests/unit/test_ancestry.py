"""Where a build stands among its branch's builds (``bot.ancestry.superseded_by``), decided
by real git: a bare remote with the branch's history, a shallow checkout of the build's
commit with ``origin`` pointing at it (as the worker leaves it), and the in-memory store
(``tests.fakes.store``) holding the builds already run and still queued."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.ancestry import superseded_by
from bot.logs import MemoryLog
from bot.models import Result
from bot.reporter import Reporter
from bot.settings import RepoSettings
from bot.store.rows import BuildRow
from tests.fakes.store import FakeStore
from tests.harness.gitrepo import Remote, git, make_remote

REPO = RepoSettings("acme/app", "", (), {}, {})


@dataclass
class History:
    remote: Remote
    a: str
    b: str
    c: str
    d: str
    other: str
    """The root of an unrelated history of the same branch (a force push)."""


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> History:
    remote = make_remote(tmp_path_factory.mktemp("git"))
    a, b, c, d = (remote.commit({"v": name}, message=name) for name in "abcd")
    git(remote.work, "checkout", "-q", "--orphan", "rewritten")
    other = remote.commit({"v": "other"}, branch="rewritten", message="rewritten")
    return History(remote, a, b, c, d, other)


class Branch:
    """The builds of ``acme/app``'s ``main`` in arrival order, and the one being run."""

    def __init__(self, tmp_path: Path) -> None:
        self.store = FakeStore(Reporter("wb", "http://bot.test"))
        self.tmp_path = tmp_path

    def built(self, sha: str) -> int:
        build_id = self.store.push(sha)
        self.store.built(build_id)
        return build_id

    def running(self, sha: str) -> BuildRow:
        build_id = self.store.push(sha)
        claim = self.store.claim_next("w")
        assert claim is not None and claim.build.id == build_id
        return claim.build

    def queued(self, sha: str, explicit: bool = False) -> int:
        return self.store.push(sha, explicit=explicit)

    def state(self, build_id: int) -> tuple[Result, str]:
        attempt = self.store.attempt_of(build_id)
        return attempt.state, attempt.description


def checkout(tmp_path: Path, remote: Remote, sha: str) -> Path:
    source = tmp_path / "source"
    source.mkdir()
    git(source, "init", "-q")
    git(source, "remote", "add", "origin", remote.url)
    git(source, "fetch", "-q", "--depth", "1", "origin", sha)
    return source


def decide(branch: Branch, build: BuildRow, history: History) -> tuple[str | None, str]:
    log = MemoryLog()
    source = checkout(branch.tmp_path, history.remote, build.sha)
    return superseded_by(branch.store, build, REPO, source, log, token=""), log.text


# -- against what was built ----------------------------------------------------------------


def test_a_build_older_than_one_already_built_is_superseded(
    tmp_path: Path, history: History
) -> None:
    branch = Branch(tmp_path)
    branch.built(history.d)
    sha, text = decide(branch, branch.running(history.b), history)
    assert sha == history.d
    assert (
        f"{history.b[:12]} is older than {history.d[:12]}, already built for this branch; "
        "not pushing over it (redeliver this push to roll back on purpose)"
    ) in text


@pytest.mark.parametrize("built", ["a", "c", "other"])
def test_the_build_runs_after_an_ancestor_itself_or_an_unrelated_history(
    tmp_path: Path, history: History, built: str
) -> None:
    branch = Branch(tmp_path)
    branch.built(getattr(history, built))
    assert decide(branch, branch.running(history.c), history) == (None, "")


def test_a_build_without_a_branch_is_never_compared(tmp_path: Path, history: History) -> None:
    """A tag's build: nothing to compare with, and git is not asked (no checkout needed)."""
    branch = Branch(tmp_path)
    branch.built(history.d)
    tag_build = BuildRow(**{**branch.running(history.b).__dict__, "branch": ""})
    queued = branch.queued(history.a)
    missing = tmp_path / "no-checkout-here"
    assert superseded_by(branch.store, tag_build, REPO, missing, MemoryLog(), token="") is None
    assert branch.state(queued) == (Result.QUEUED, "")


# -- against the queue ---------------------------------------------------------------------


def test_the_latest_queued_descendant_to_arrive_runs_instead(
    tmp_path: Path, history: History
) -> None:
    branch = Branch(tmp_path)
    build = branch.running(history.b)
    newest, latest = branch.queued(history.d), branch.queued(history.c)
    sha, text = decide(branch, build, history)
    assert sha == history.c  # arrival order decides among descendants, not the history
    assert (
        f"{history.b[:12]} is an ancestor of {history.c[:12]}, queued for this branch; that "
        "build runs instead"
    ) in text
    assert branch.state(newest) == branch.state(latest) == (Result.QUEUED, "")


def test_queued_ancestors_are_canceled_and_the_build_runs(tmp_path: Path, history: History) -> None:
    branch = Branch(tmp_path)
    build = branch.running(history.c)
    older, oldest = branch.queued(history.b), branch.queued(history.a)
    unrelated = branch.queued(history.other)
    sha, text = decide(branch, build, history)
    assert sha is None
    superseded = (Result.CANCELED, f"Superseded by {history.c[:7]}")
    assert branch.state(older) == superseded and branch.state(oldest) == superseded
    assert branch.state(unrelated) == (Result.QUEUED, "")
    assert (
        "canceled the queued builds of older commits of this branch: "
        f"#{older} ({history.b[:12]}), #{oldest} ({history.a[:12]})"
    ) in text
    assert f"#{unrelated} " not in text


def test_a_users_redelivery_in_the_queue_is_neither_waited_for_nor_canceled(
    tmp_path: Path, history: History
) -> None:
    branch = Branch(tmp_path)
    build = branch.running(history.c)
    rollback = branch.queued(history.a, explicit=True)
    rerun = branch.queued(history.d, explicit=True)
    assert decide(branch, build, history) == (None, "")
    assert branch.state(rollback) == (Result.QUEUED, "")
    assert branch.state(rerun) == (Result.QUEUED, "")


def test_a_commit_the_remote_does_not_have_keeps_arrival_order(
    tmp_path: Path, history: History
) -> None:
    branch = Branch(tmp_path)
    build = branch.running(history.b)
    gone = branch.queued("f" * 40)  # force-pushed away, or never pushed
    ancestor = branch.queued(history.a)
    sha, _ = decide(branch, build, history)
    assert sha is None
    assert branch.state(gone) == (Result.QUEUED, "")
    assert branch.state(ancestor)[0] is Result.CANCELED  # one bad sha spoils nothing else
