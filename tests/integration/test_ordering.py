"""An older commit never overwrites a newer tag of the same branch (behaviour §3), even when
GitHub delivers pushes out of order and some are missing."""

from __future__ import annotations

from pathlib import Path

from bot.build import execute
from bot.models import Result
from bot.services import Services
from bot.settings import parse_settings
from bot.store.rows import NewPush
from bot.wiring import build_services
from tests.harness.gitrepo import Remote, git, make_remote

YML = "build:\n  steps:\n    - script:\n        code: echo building $WERCKER_GIT_COMMIT\n"


def _push(
    sha: str, before: str, delivery: str, commits: tuple[str, ...] = (), forced: bool = False
) -> NewPush:
    return NewPush(
        hook_id="1",
        delivery_id=delivery,
        repo="acme/app",
        ref="refs/heads/main",
        branch="main",
        git_tag="",
        sha=sha,
        before_sha=before,
        message="",
        pusher="",
        html_url="",
        pipelines=["build"],
        commits=commits,
        forced=forced,
    )


def test_late_older_push_is_superseded_but_its_redelivery_runs(tmp_path: Path) -> None:
    remote = make_remote(tmp_path / "git")
    a = remote.commit({"wercker.yml": YML, "v": "a"})
    b = remote.commit({"v": "b"})
    c = remote.commit({"v": "c"})
    d = remote.commit({"v": "d"})
    settings = parse_settings(
        {
            "data_dir": str(tmp_path / "data"),
            "runner": {"kind": "local"},
            "github": {"webhook_secret": "x" * 10, "status_context": "wb"},
            "repos": {"acme/app": {"clone_url": remote.url, "pipelines": ["build"]}},
        },
        {},
        base_dir=tmp_path,
    )
    svc = build_services(settings)
    store = svc.store

    def run_next() -> str:
        claim = store.claim_next("t")
        assert claim is not None
        return str(execute(claim, svc))

    # C→D arrives and is built; the push of B (A→B) arrives late, and B→C never arrives.
    store.record_push(_push(d, c, "d-d"))
    assert run_next() == "passed"
    late = store.record_push(_push(b, a, "d-b"))
    assert run_next() == "canceled"
    statuses = store.statuses_for("acme/app", b)
    assert statuses[-1].state == "error"
    assert statuses[-1].description == f"Superseded by {d[:7]}"
    # The user redelivers B on purpose: that is a rollback, and it runs.
    again = store.record_push(_push(b, a, "d-b"))
    assert again.build_id == late.build_id and again.attempt == 2
    assert run_next() == "passed"


def test_pushes_in_order_all_run(tmp_path: Path) -> None:
    remote = make_remote(tmp_path / "git")
    a = remote.commit({"wercker.yml": YML, "v": "a"})
    b = remote.commit({"v": "b"})
    settings = parse_settings(
        {
            "data_dir": str(tmp_path / "data"),
            "runner": {"kind": "local"},
            "github": {"webhook_secret": "x" * 10},
            "repos": {"acme/app": {"clone_url": remote.url, "pipelines": ["build"]}},
        },
        {},
        base_dir=tmp_path,
    )
    svc = build_services(settings)
    for sha, before, delivery in ((a, "0" * 40, "1"), (b, a, "2")):
        svc.store.record_push(_push(sha, before, delivery))
        claim = svc.store.claim_next("t")
        assert claim is not None
        assert str(execute(claim, svc)) == "passed"


# The "tag": every passing build writes its commit to the branch's cache, last writer wins.
DEPLOY_YML = (
    "build:\n  steps:\n    - script:\n"
    "        code: echo $WERCKER_GIT_COMMIT > $WERCKER_CACHE_DIR/deployed\n"
)


def _services(tmp_path: Path, remote: Remote) -> Services:
    settings = parse_settings(
        {
            "data_dir": str(tmp_path / "data"),
            "runner": {"kind": "local"},
            "github": {"webhook_secret": "x" * 10, "status_context": "wb"},
            "repos": {"acme/app": {"clone_url": remote.url, "pipelines": ["build"]}},
        },
        {},
        base_dir=tmp_path,
    )
    return build_services(settings)


def _drain(svc: Services) -> dict[str, str]:
    """Runs every queued build; returns sha → result of each attempt run."""
    results: dict[str, str] = {}
    while (claim := svc.store.claim_next("t")) is not None:
        results[str(claim.build.sha)] = str(execute(claim, svc))
    return results


def _deployed(tmp_path: Path) -> str:
    (path,) = (tmp_path / "data" / "cache").glob("*/main/deployed")
    return path.read_text().strip()


def _final(svc: Services, sha: str) -> str:
    row = svc.store.statuses_for("acme/app", sha)[-1]
    return f"{row.state}:{row.description}"


def _history(tmp_path: Path) -> tuple[Remote, list[str]]:
    remote = make_remote(tmp_path / "git")
    shas = [remote.commit({"wercker.yml": DEPLOY_YML, "v": "s"})]
    shas += [remote.commit({"v": v}) for v in "abc"]
    return remote, shas


def test_git_decides_when_payloads_prove_nothing_descendant_first(tmp_path: Path) -> None:
    # S → A → B → C. B's delivery is lost; C and A arrive (C first) while S runs, and no
    # payload links them: the worker, with git, cancels A for C.
    remote, (s, a, b, c) = _history(tmp_path)
    svc = _services(tmp_path, remote)
    svc.store.record_push(_push(s, "0" * 40, "s", (s,)))
    running = svc.store.claim_next("t")  # S is running (past its checkout)
    assert running is not None
    svc.store.record_push(_push(c, b, "c", (c,)))
    svc.store.record_push(_push(a, s, "a", (a,)))
    svc.store.finish_attempt(running.attempt_id, Result.PASSED, "S ran")
    assert _drain(svc) == {c: "passed"}
    assert _final(svc, a) == f"error:Superseded by {c[:7]}"
    assert _final(svc, c).startswith("success:")
    assert _deployed(tmp_path) == c


def test_git_decides_when_payloads_prove_nothing_ancestor_first(tmp_path: Path) -> None:
    remote, (s, a, b, c) = _history(tmp_path)
    svc = _services(tmp_path, remote)
    svc.store.record_push(_push(s, "0" * 40, "s", (s,)))
    running = svc.store.claim_next("t")  # S is running (past its checkout)
    assert running is not None
    svc.store.record_push(_push(a, s, "a", (a,)))
    svc.store.record_push(_push(c, b, "c", (c,)))
    svc.store.finish_attempt(running.attempt_id, Result.PASSED, "S ran")
    # A is claimed first (arrival order) and finds its descendant C queued.
    assert _drain(svc) == {a: "canceled", c: "passed"}
    assert _final(svc, a) == f"error:Superseded by {c[:7]}"
    assert _deployed(tmp_path) == c


def test_unrelated_histories_run_in_arrival_order(tmp_path: Path) -> None:
    # A force push onto an unrelated history supersedes nothing by ancestry.
    remote, (s, a, _b, _c) = _history(tmp_path)
    git(remote.work, "checkout", "-q", "--orphan", "rewrite")
    forced = remote.commit({"wercker.yml": DEPLOY_YML, "v": "new"}, branch="rewrite")
    svc = _services(tmp_path, remote)
    svc.store.record_push(_push(s, "0" * 40, "s", (s,)))
    running = svc.store.claim_next("t")  # S is running (past its checkout)
    assert running is not None
    svc.store.record_push(_push(a, s, "a", (a,)))
    svc.store.record_push(_push(forced, a, "f", (forced,), forced=True))
    svc.store.finish_attempt(running.attempt_id, Result.PASSED, "S ran")
    assert _drain(svc) == {a: "passed", forced: "passed"}
    assert _deployed(tmp_path) == forced


def test_a_queued_redelivery_is_never_superseded_by_a_descendant(tmp_path: Path) -> None:
    remote, (s, a, _b, _c) = _history(tmp_path)
    svc = _services(tmp_path, remote)
    svc.store.record_push(_push(s, "0" * 40, "s", (s,)))
    assert _drain(svc) == {s: "passed"}
    running_a = svc.store.record_push(_push(a, s, "a", (a,)))
    claim = svc.store.claim_next("t")
    assert claim is not None and claim.build.id == running_a.build_id
    # While A runs, the user redelivers S (a rollback on purpose).
    rerun = svc.store.record_push(_push(s, "0" * 40, "s", (s,)))
    assert rerun.attempt == 2
    assert str(execute(claim, svc)) == "passed"
    assert _drain(svc) == {s: "passed"}
    assert _deployed(tmp_path) == s
