"""``Store.claim_next``: the query itself skips branches with a running attempt, so no number
of queued builds behind busy branches starves another repository."""

from __future__ import annotations

from pathlib import Path

from bot.models import Result
from bot.store.store import NewPush, Store

URL = "http://bot/builds/{id}"


def _push(n: int, *, repo: str = "acme/app", branch: str = "main", tag: str = "") -> NewPush:
    return NewPush(
        hook_id="7",
        delivery_id=f"{repo}-{n}",
        repo=repo,
        ref=f"refs/tags/{tag}" if tag else f"refs/heads/{branch}",
        branch="" if tag else branch,
        git_tag=tag,
        sha=f"{n:040x}",
        before_sha="0" * 40,  # proves nothing: every build stays queued
        message="m",
        pusher="p",
        html_url="",
        pipelines=["build"],
        status_context="wb",
    )


def test_sixty_queued_on_a_busy_branch_do_not_starve_another_repository(
    tmp_path: Path,
) -> None:
    store = Store(tmp_path / "db.sqlite3")
    store.record_push(_push(1), URL)
    running = store.claim_next("w1")
    assert running is not None and running.build.repo == "acme/app"
    for n in range(2, 62):  # 60 queued behind the running build of acme/app main
        store.record_push(_push(n), URL)
    other = store.record_push(_push(100, repo="acme/other"), URL)

    claim = store.claim_next("w2")
    assert claim is not None and claim.build.id == other.build_id
    assert store.claim_next("w3") is None  # main is still busy
    # When main is free again, its oldest queued build is next, in arrival order.
    store.finish_attempt(running.attempt_id, Result.PASSED, "ok")
    nxt = store.claim_next("w3")
    assert nxt is not None and nxt.build.sha == f"{2:040x}"


def test_queued_tag_builds_of_a_busy_repository_do_not_starve_others(tmp_path: Path) -> None:
    """Tag builds share the branch "" of their repository: one running makes the rest wait,
    and the query still finds a later branch build of the same repository."""
    store = Store(tmp_path / "db.sqlite3")
    store.record_push(_push(1, tag="v1"), URL)
    assert store.claim_next("w1") is not None
    for n in range(2, 62):
        store.record_push(_push(n, tag=f"v{n}"), URL)
    main = store.record_push(_push(200, branch="main"), URL)
    claim = store.claim_next("w2")
    assert claim is not None and claim.build.id == main.build_id
    assert store.claim_next("w3") is None
