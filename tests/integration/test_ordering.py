"""An older commit never overwrites a newer tag of the same branch (behaviour §3), even when
GitHub delivers pushes out of order and some are missing."""

from __future__ import annotations

from pathlib import Path

from bot.build import execute
from bot.settings import parse_settings
from bot.store.store import NewPush
from bot.wiring import build_services
from tests.harness.gitrepo import make_remote

YML = "build:\n  steps:\n    - script:\n        code: echo building $WERCKER_GIT_COMMIT\n"


def _push(sha: str, before: str, delivery: str) -> NewPush:
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
        status_context="wb",
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
    store.record_push(_push(d, c, "d-d"), "u/{id}")
    assert run_next() == "passed"
    late = store.record_push(_push(b, a, "d-b"), "u/{id}")
    assert run_next() == "canceled"
    statuses = store.statuses_for("acme/app", b)
    assert statuses[-1]["state"] == "error"
    assert statuses[-1]["description"] == f"Superseded by {d[:7]}"
    # The user redelivers B on purpose: that is a rollback, and it runs.
    again = store.record_push(_push(b, a, "d-b"), "u/{id}")
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
        svc.store.record_push(_push(sha, before, delivery), "u/{id}")
        claim = svc.store.claim_next("t")
        assert claim is not None
        assert str(execute(claim, svc)) == "passed"
