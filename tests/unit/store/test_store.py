import multiprocessing
import os
import queue
import subprocess
import sys
from pathlib import Path

import pytest

from bot.models import Result
from bot.procs import worker_name
from bot.store.store import NewPush, Store
from tests.harness.builds import new_push

URL = "http://bot/builds/{id}"


def push(
    sha: str,
    *,
    delivery: str | None = None,
    branch: str = "main",
    before: str = "0" * 40,
    repo: str = "acme/app",
    commits: tuple[str, ...] = (),
    forced: bool = False,
) -> NewPush:
    return NewPush(
        hook_id="7",
        delivery_id=delivery or f"d-{sha}",
        repo=repo,
        ref=f"refs/heads/{branch}",
        branch=branch,
        git_tag="",
        sha=sha,
        before_sha=before,
        message="m",
        pusher="p",
        html_url="https://github.com/acme/app",
        pipelines=["build", "deploy"],
        status_context="wb",
        commits=commits,
        forced=forced,
    )


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "db.sqlite3")


def latest(store: Store, sha: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for row in store.statuses_for("acme/app", sha):
        out[row["context"]] = f"{row['state']}:{row['description']}"
    return out


def test_push_is_stored_queued_with_pending_statuses(store: Store) -> None:
    intake = store.record_push(push("a" * 40), URL)
    assert intake.ignored is None and intake.attempt == 1
    assert store.attempt_state(intake.build_id or 0, 1) == "queued"
    assert latest(store, "a" * 40) == {"wb/build": "pending:Queued", "wb/deploy": "pending:Queued"}
    rows = store.statuses_for("acme/app", "a" * 40)
    assert rows[0]["target_url"] == f"http://bot/builds/{intake.build_id}"


def test_redelivery_ignored_while_in_progress_then_starts_next_attempt(store: Store) -> None:
    first = store.record_push(push("a" * 40, delivery="g1"), URL)
    again = store.record_push(push("a" * 40, delivery="g1"), URL)
    assert again.ignored == "already in progress" and again.build_id == first.build_id
    claim = store.claim_next("w")
    assert claim is not None
    assert store.record_push(push("a" * 40, delivery="g1"), URL).ignored == "already in progress"
    store.finish_attempt(claim.attempt_id, Result.PASSED, "ok")
    rerun = store.record_push(push("a" * 40, delivery="g1"), URL)
    assert rerun.ignored is None and rerun.build_id == first.build_id and rerun.attempt == 2
    claim2 = store.claim_next("w")
    assert claim2 is not None and claim2.attempt_number == 2 and claim2.explicit


def test_same_guid_from_another_hook_is_a_new_build(store: Store) -> None:
    a = store.record_push(push("a" * 40, delivery="g1"), URL)
    other = push("a" * 40, delivery="g1")
    other = NewPush(**{**other.__dict__, "hook_id": "8"})
    b = store.record_push(other, URL)
    assert a.build_id != b.build_id and b.ignored is None


def test_new_push_supersedes_queued_build_of_same_branch(store: Store) -> None:
    old = store.record_push(push("a" * 40), URL)
    store.record_push(push("b" * 40, before="a" * 40), URL)
    store.record_push(push("c" * 40, branch="other"), URL)
    assert store.attempt_state(old.build_id or 0, 1) == "canceled"
    assert latest(store, "a" * 40) == {
        "wb/build": "error:Superseded by bbbbbbb",
        "wb/deploy": "error:Superseded by bbbbbbb",
    }


def test_running_build_is_not_superseded_and_branch_runs_serially(store: Store) -> None:
    store.record_push(push("a" * 40), URL)
    running = store.claim_next("w1")
    assert running is not None
    store.record_push(push("b" * 40, before="a" * 40), URL)
    other = store.record_push(push("c" * 40, branch="dev"), URL)
    nxt = store.claim_next("w2")
    # main is busy, so the dev build is claimed even though it arrived later.
    assert nxt is not None and nxt.build.id == other.build_id
    assert store.claim_next("w3") is None
    store.finish_attempt(running.attempt_id, Result.PASSED, "ok")
    third = store.claim_next("w3")
    assert third is not None and third.build.sha == "b" * 40


def test_out_of_order_older_push_never_runs(store: Store) -> None:
    store.record_push(push("b" * 40, before="a" * 40), URL)
    late = store.record_push(push("a" * 40), URL)
    assert store.attempt_state(late.build_id or 0, 1) == "canceled"
    assert latest(store, "a" * 40)["wb/build"] == "error:Superseded by bbbbbbb"


def test_dead_worker_attempts_are_errored_and_statuses_resolved(store: Store) -> None:
    store.record_push(push("a" * 40), URL)
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    claim = store.claim_next(f"{os.uname().nodename}:{proc.pid}:w0")
    assert claim is not None
    assert store.recover_dead() == [claim.attempt_id]
    assert store.attempt_state(claim.build.id, 1) == "errored"
    assert latest(store, "a" * 40)["wb/build"] == "error:Worker died"


def test_live_worker_attempts_are_left_alone(store: Store) -> None:
    store.record_push(push("a" * 40), URL)
    claim = store.claim_next(f"{os.uname().nodename}:{os.getppid()}:w0")
    assert claim is not None
    assert store.recover_dead() == []


def test_outbox_delivers_each_context_in_order(store: Store) -> None:
    store.record_push(push("a" * 40), URL)
    store.enqueue_status("acme/app", "a" * 40, "wb/build", "success", "done", "u")
    first = store.claim_statuses()
    assert sorted((r["context"], r["state"]) for r in first) == [
        ("wb/build", "pending"),
        ("wb/deploy", "pending"),
    ]
    # Leased rows are not handed out twice, and the next row of a context waits its turn.
    assert store.claim_statuses() == []
    for row in first:
        store.status_delivered(row["id"])
    assert [(r["context"], r["state"]) for r in store.claim_statuses()] == [("wb/build", "success")]


def test_outbox_backlog_collapses_after_failures(store: Store) -> None:
    store.record_push(push("a" * 40), URL)
    rows = store.claim_statuses()
    for row in rows:
        store.status_retry(row["id"], 0.0, "503 from GitHub")
    store.enqueue_status("acme/app", "a" * 40, "wb/build", "success", "done", "u")
    due = {(r["context"], r["state"]) for r in store.claim_statuses()}
    assert due == {("wb/build", "success"), ("wb/deploy", "pending")}
    outcomes = [r["outcome"] for r in store.statuses_for("acme/app", "a" * 40)]
    assert outcomes.count("superseded") == 1


def _claimer(db: str, n: int, out: "multiprocessing.Queue[int]") -> None:
    s = Store(Path(db))
    for _ in range(n):
        c = s.claim_next(f"proc-{os.getpid()}")
        if c is not None:
            out.put(c.attempt_id)
            s.finish_attempt(c.attempt_id, Result.PASSED, "ok")


def test_claims_are_exclusive_across_processes(tmp_path: Path) -> None:
    db = tmp_path / "db.sqlite3"
    store = Store(db)
    for i in range(30):
        store.record_push(push(f"{i + 1:040x}", branch=f"b{i}"), URL)
    ctx = multiprocessing.get_context("spawn")
    out: multiprocessing.Queue[int] = ctx.Queue()
    procs = [ctx.Process(target=_claimer, args=(str(db), 20, out)) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    claimed = []
    while True:
        try:
            claimed.append(out.get(timeout=2))
        except queue.Empty:
            break
    assert len(claimed) == 30 and len(set(claimed)) == 30


def test_recovery_also_ends_the_steps_left_running(store: Store) -> None:
    store.record_push(push("a" * 40), URL)
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    claim = store.claim_next(f"{os.uname().nodename}:{proc.pid}:tok:w0")
    assert claim is not None
    pipeline = store.start_pipeline(claim.attempt_id, 0, "build")
    store.start_step(pipeline, 0, "main", "script", "slow")
    store.recover_dead()
    detail = store.build_detail(claim.build.id)
    assert detail is not None
    step = detail["attempts"][0]["pipelines"][0]["steps"][0]
    assert step["state"] == "errored" and step["finished_at"] is not None
    assert step["message"] == "Worker died"


def test_redelivery_does_not_cancel_a_queued_newer_push(store: Store) -> None:
    store.record_push(push("a" * 40, delivery="old"), URL)
    claim = store.claim_next("w")
    assert claim is not None
    store.finish_attempt(claim.attempt_id, Result.PASSED, "ok")
    newer = store.record_push(push("b" * 40, delivery="new", before="a" * 40), URL)
    rerun = store.record_push(push("a" * 40, delivery="old"), URL)
    assert rerun.attempt == 2
    assert store.attempt_state(newer.build_id or 0, 1) == "queued"


# -- ordering by ancestry (behaviour §3): only a descendant supersedes -------------------------

S, A, B, C = ("5" * 40, "a" * 40, "b" * 40, "c" * 40)  # the history S → A → B → C


def state_of(store: Store, intake: object) -> str | None:
    build_id = getattr(intake, "build_id", None)
    return store.attempt_state(build_id or 0, 1)


def test_a_push_the_payload_does_not_link_supersedes_nothing_at_intake(store: Store) -> None:
    # C → A: nothing in C's payload (before B, commits [C]) proves A older; git decides later.
    c = store.record_push(push(C, before=B, commits=(C,)), URL)
    a = store.record_push(push(A, before=S, commits=(A,)), URL)
    assert state_of(store, c) == "queued" and state_of(store, a) == "queued"
    assert latest(store, C)["wb/build"] == "pending:Queued"


def test_out_of_order_c_a_b_the_newest_commit_wins_at_intake(store: Store) -> None:
    c = store.record_push(push(C, before=B, commits=(C,)), URL)
    a = store.record_push(push(A, before=S, commits=(A,)), URL)
    b = store.record_push(push(B, before=A, commits=(B,)), URL)
    # B is C's before: stored canceled at once. A is B's before, so older than C too.
    assert state_of(store, b) == "canceled" and state_of(store, a) == "canceled"
    assert state_of(store, c) == "queued"
    assert latest(store, B)["wb/build"] == f"error:Superseded by {C[:7]}"
    assert latest(store, A)["wb/deploy"] == f"error:Superseded by {C[:7]}"
    claim = store.claim_next("w")
    assert claim is not None and claim.build.sha == C


def test_commits_list_proves_ancestry_both_ways(store: Store) -> None:
    # A push S → C carrying A, B, C: a queued A or B is older, and a late B is too.
    a = store.record_push(push(A, before=S, commits=(A,)), URL)
    c = store.record_push(push(C, before=S, commits=(A, B, C)), URL)
    late_b = store.record_push(push(B, before=A, commits=(B,)), URL)
    assert state_of(store, a) == "canceled" and state_of(store, late_b) == "canceled"
    assert state_of(store, c) == "queued"
    assert latest(store, A)["wb/build"] == f"error:Superseded by {C[:7]}"


def test_a_force_pushes_before_is_no_proof(store: Store) -> None:
    old = store.record_push(push(A, before=S), URL)
    forced = store.record_push(push(C, before=A, forced=True), URL)
    # Unrelated histories: both stay queued and run in arrival order.
    assert state_of(store, old) == "queued" and state_of(store, forced) == "queued"
    late = store.record_push(push(A, delivery="again-a", before=S), URL)
    assert state_of(store, late) == "queued"


def test_a_queued_redelivery_is_never_superseded(store: Store) -> None:
    first = store.record_push(push(A, delivery="old", before=S), URL)
    claim = store.claim_next("w")
    assert claim is not None
    store.finish_attempt(claim.attempt_id, Result.PASSED, "ok")
    rerun = store.record_push(push(A, delivery="old", before=S), URL)
    assert rerun.attempt == 2
    store.record_push(push(B, before=A), URL)
    assert store.attempt_state(first.build_id or 0, 2) == "queued"


def test_worker_side_supersede_cancels_queued_and_resolves_statuses(store: Store) -> None:
    a = store.record_push(push(A, before=S), URL)
    b = store.record_push(push(B, before=S, commits=(B,), delivery="d-b2"), URL)
    queued = store.queued_on_branch("acme/app", "main", except_build=b.build_id or 0)
    assert [(q.build_id, q.sha, q.explicit) for q in queued] == [(a.build_id, A, False)]
    assert store.supersede("acme/app", queued, B) == [queued[0].attempt_id]
    assert state_of(store, a) == "canceled"
    assert latest(store, A) == {
        "wb/build": f"error:Superseded by {B[:7]}",
        "wb/deploy": f"error:Superseded by {B[:7]}",
    }
    # Already out of the queue: left alone, and no second status.
    assert store.supersede("acme/app", queued, C) == []
    assert latest(store, A)["wb/build"] == f"error:Superseded by {B[:7]}"


def _push(pipelines: list[str], delivery: str = "d") -> NewPush:
    return new_push(pipelines=pipelines, delivery_id=delivery)


def test_redelivery_uses_the_builds_own_pipelines(tmp_path: Path) -> None:
    store = Store(tmp_path / "db")
    first = store.record_push(_push(["build", "deploy"]), "u/{id}")
    claim = store.claim_next("w")
    assert claim is not None
    store.finish_attempt(claim.attempt_id, Result.PASSED, "ok")
    store.record_push(_push(["build", "publish"]), "u/{id}")
    contexts = {r["context"] for r in store.statuses_for("acme/app", "a" * 40)}
    assert contexts == {"wb/build", "wb/deploy"} and first.build_id == claim.build.id


def test_same_pid_under_an_earlier_token_is_dead(tmp_path: Path) -> None:
    store = Store(tmp_path / "db")
    store.record_push(_push(["build"]), "u/{id}")
    claim = store.claim_next(f"{os.uname().nodename}:{os.getpid()}:oldtoken:w0")
    assert claim is not None
    assert store.recover_dead() == [claim.attempt_id]


def test_stale_heartbeat_is_dead_even_if_the_pid_is_alive(tmp_path: Path) -> None:
    store = Store(tmp_path / "db")
    store.record_push(_push(["build"]), "u/{id}")
    claim = store.claim_next(f"{os.uname().nodename}:{os.getppid()}:tok:w0")
    assert claim is not None
    assert store.recover_dead() == []
    assert store.recover_dead(max_age=-1) == [claim.attempt_id]


def test_current_process_attempts_are_alive(tmp_path: Path) -> None:
    store = Store(tmp_path / "db")
    store.record_push(_push(["build"]), "u/{id}")
    assert store.claim_next(worker_name("w0")) is not None
    assert store.recover_dead() == []
