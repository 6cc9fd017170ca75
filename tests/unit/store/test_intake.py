"""Intake (``bot.store.intake``): a push stored durably, redeliveries, and ordering by what
payloads prove (behaviour §3)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.models import Result
from bot.reporter import Reporter
from bot.store.base import OutboxWriter
from bot.store.facts import Stored
from bot.store.rows import NewPush
from bot.store.schema import attempts, builds, deliveries, outbox, push_ancestors
from bot.store.sql import SqlStore
from tests.harness.builds import open_store
from tests.unit.store.helpers import A, B, C, S, latest, push, push_of, state_of


def test_push_is_stored_queued_with_pending_statuses(store: SqlStore) -> None:
    intake = store.record_push(push("a" * 40))
    assert intake.ignored is None and intake.attempt == 1
    assert store.attempt_state(intake.build_id or 0, 1) == "queued"
    assert latest(store, "a" * 40) == {"wb/build": "pending:Queued", "wb/deploy": "pending:Queued"}
    rows = store.statuses_for("acme/app", "a" * 40)
    assert rows[0].target_url == f"http://bot/builds/{intake.build_id}"


def test_redelivery_ignored_while_in_progress_then_starts_next_attempt(store: SqlStore) -> None:
    first = store.record_push(push("a" * 40, delivery="g1"))
    again = store.record_push(push("a" * 40, delivery="g1"))
    assert again.ignored == "already in progress" and again.build_id == first.build_id
    claim = store.claim_next("w")
    assert claim is not None
    assert store.record_push(push("a" * 40, delivery="g1")).ignored == "already in progress"
    store.finish_attempt(claim.attempt_id, Result.PASSED, "ok")
    rerun = store.record_push(push("a" * 40, delivery="g1"))
    assert rerun.ignored is None and rerun.build_id == first.build_id and rerun.attempt == 2
    claim2 = store.claim_next("w")
    assert claim2 is not None and claim2.attempt_number == 2 and claim2.explicit


def test_same_guid_from_another_hook_is_a_new_build(store: SqlStore) -> None:
    a = store.record_push(push("a" * 40, delivery="g1"))
    other = push("a" * 40, delivery="g1")
    other = NewPush(**{**other.__dict__, "hook_id": "8"})
    b = store.record_push(other)
    assert a.build_id != b.build_id and b.ignored is None


def test_new_push_supersedes_queued_build_of_same_branch(store: SqlStore) -> None:
    old = store.record_push(push("a" * 40))
    store.record_push(push("b" * 40, before="a" * 40))
    store.record_push(push("c" * 40, branch="other"))
    assert store.attempt_state(old.build_id or 0, 1) == "canceled"
    assert latest(store, "a" * 40) == {
        "wb/build": "error:Superseded by bbbbbbb",
        "wb/deploy": "error:Superseded by bbbbbbb",
    }


def test_out_of_order_older_push_never_runs(store: SqlStore) -> None:
    store.record_push(push("b" * 40, before="a" * 40))
    late = store.record_push(push("a" * 40))
    assert store.attempt_state(late.build_id or 0, 1) == "canceled"
    assert latest(store, "a" * 40)["wb/build"] == "error:Superseded by bbbbbbb"


def test_redelivery_does_not_cancel_a_queued_newerpush_of(store: SqlStore) -> None:
    store.record_push(push("a" * 40, delivery="old"))
    claim = store.claim_next("w")
    assert claim is not None
    store.finish_attempt(claim.attempt_id, Result.PASSED, "ok")
    newer = store.record_push(push("b" * 40, delivery="new", before="a" * 40))
    rerun = store.record_push(push("a" * 40, delivery="old"))
    assert rerun.attempt == 2
    assert store.attempt_state(newer.build_id or 0, 1) == "queued"


def test_redelivery_uses_the_builds_own_pipelines(tmp_path: Path) -> None:
    store = open_store(tmp_path / "db")
    first = store.record_push(push_of(["build", "deploy"]))
    claim = store.claim_next("w")
    assert claim is not None
    store.finish_attempt(claim.attempt_id, Result.PASSED, "ok")
    store.record_push(push_of(["build", "publish"]))
    contexts = {r.context for r in store.statuses_for("acme/app", "a" * 40)}
    assert contexts == {"wb/build", "wb/deploy"} and first.build_id == claim.build.id


# -- ordering by ancestry (behaviour §3): only a descendant supersedes -------------------------


def test_a_push_the_payload_does_not_link_supersedes_nothing_at_intake(store: SqlStore) -> None:
    # C → A: nothing in C's payload (before B, commits [C]) proves A older; git decides later.
    c = store.record_push(push(C, before=B, commits=(C,)))
    a = store.record_push(push(A, before=S, commits=(A,)))
    assert state_of(store, c) == "queued" and state_of(store, a) == "queued"
    assert latest(store, C)["wb/build"] == "pending:Queued"


def test_out_of_order_c_a_b_the_newest_commit_wins_at_intake(store: SqlStore) -> None:
    c = store.record_push(push(C, before=B, commits=(C,)))
    a = store.record_push(push(A, before=S, commits=(A,)))
    b = store.record_push(push(B, before=A, commits=(B,)))
    # B is C's before: stored canceled at once. A is B's before, so older than C too.
    assert state_of(store, b) == "canceled" and state_of(store, a) == "canceled"
    assert state_of(store, c) == "queued"
    assert latest(store, B)["wb/build"] == f"error:Superseded by {C[:7]}"
    assert latest(store, A)["wb/deploy"] == f"error:Superseded by {C[:7]}"
    claim = store.claim_next("w")
    assert claim is not None and claim.build.sha == C


def test_commits_list_proves_ancestry_both_ways(store: SqlStore) -> None:
    # A push S → C carrying A, B, C: a queued A or B is older, and a late B is too.
    a = store.record_push(push(A, before=S, commits=(A,)))
    c = store.record_push(push(C, before=S, commits=(A, B, C)))
    late_b = store.record_push(push(B, before=A, commits=(B,)))
    assert state_of(store, a) == "canceled" and state_of(store, late_b) == "canceled"
    assert state_of(store, c) == "queued"
    assert latest(store, A)["wb/build"] == f"error:Superseded by {C[:7]}"


def test_a_force_pushes_before_is_no_proof(store: SqlStore) -> None:
    old = store.record_push(push(A, before=S))
    forced = store.record_push(push(C, before=A, forced=True))
    # Unrelated histories: both stay queued and run in arrival order.
    assert state_of(store, old) == "queued" and state_of(store, forced) == "queued"
    late = store.record_push(push(A, delivery="again-a", before=S))
    assert state_of(store, late) == "queued"


def test_a_queued_redelivery_is_never_superseded(store: SqlStore) -> None:
    first = store.record_push(push(A, delivery="old", before=S))
    claim = store.claim_next("w")
    assert claim is not None
    store.finish_attempt(claim.attempt_id, Result.PASSED, "ok")
    rerun = store.record_push(push(A, delivery="old", before=S))
    assert rerun.attempt == 2
    store.record_push(push(B, before=A))
    assert store.attempt_state(first.build_id or 0, 2) == "queued"


# -- record_pushes: one transaction for a batch, the same answers and rows as one by one --------


def _batch_scenario() -> list[NewPush]:
    """Pushes that exercise every intake rule at once: a redelivery in the batch, a re-run of
    a finished build, an out-of-order ancestor stored canceled, supersede on two branches, a
    forced push, another repository."""
    return [
        push(C, before=B, commits=(C,)),
        push(A, before=S, commits=(A,)),
        push(B, before=A, commits=(B,)),  # C proves it older: canceled; A older still
        push(C, before=B, commits=(C,)),  # the same delivery again: in progress
        push(S, delivery="s0"),  # a finished build redelivered: attempt 2
        push(A, delivery="dev-a", before=S, branch="dev"),
        push(B, delivery="dev-b", before=A, branch="dev"),  # supersedes dev's A
        push(C, delivery="dev-c", before=A, branch="dev", forced=True),
        push(A, delivery="other-a", repo="acme/other"),
    ]


def _prepared(where: Path | str) -> SqlStore:
    """A store (a SQLite file, or a database URL) where S (delivery ``s0``) on main has
    already run and passed."""
    store = open_store(where)
    store.record_push(push(S, delivery="s0"))
    claim = store.claim_next("w")
    assert claim is not None
    store.finish_attempt(claim.attempt_id, Result.PASSED, "ok")
    return store


def _dump(store: SqlStore) -> dict[str, list[tuple[object, ...]]]:
    """Every intake table's rows in id order, without the clock's columns."""
    clock = {
        "created_at",
        "started_at",
        "finished_at",
        "received_at",
        "next_try_at",
        "heartbeat_at",
    }
    out: dict[str, list[tuple[object, ...]]] = {}
    with store.engine.connect() as conn:
        for table in (builds, attempts, deliveries, push_ancestors, outbox):
            rows = conn.execute(select(table).order_by(*table.primary_key.columns)).all()
            keep = [c.name for c in table.columns if c.name not in clock]
            out[table.name] = [tuple(r._mapping[k] for k in keep) for r in rows]
            if "finished_at" in table.c:  # when, no; whether, yes
                out[table.name + ".finished"] = [(r.finished_at is not None,) for r in rows]
    return out


def test_a_batch_stores_and_answers_exactly_as_one_push_at_a_time(
    db_url: str, tmp_path: Path
) -> None:
    # The reference, one push per transaction, on SQLite; the batch on each dialect.
    one_by_one, batched = _prepared(tmp_path / "one-by-one"), _prepared(db_url)
    pushes = _batch_scenario()
    answers = [one_by_one.record_push(p) for p in pushes]
    assert batched.record_pushes(pushes) == answers
    assert answers[3].ignored == "already in progress" and answers[4].attempt == 2
    assert state_of(batched, answers[2]) == "canceled"
    assert state_of(batched, answers[1]) == "canceled"
    assert _dump(batched) == _dump(one_by_one)
    one_by_one.close()
    batched.close()


def test_a_batch_that_fails_keeps_nothing(db_url: str, tmp_path: Path) -> None:
    class Breaks(Reporter):
        def stored(self, outbox: OutboxWriter, fact: Stored) -> None:
            if fact.sha == B:
                raise RuntimeError("listener failed")
            super().stored(outbox, fact)

    store = open_store(db_url)
    store.listener = Breaks("wb", "http://bot")
    with pytest.raises(RuntimeError, match="listener failed"):
        store.record_pushes([push(A), push(B, before=A), push(C, delivery="c")])
    assert _dump(store) == _dump(open_store(tmp_path / "empty"))
    store.close()


def test_an_empty_batch_is_no_transaction(store: SqlStore) -> None:
    assert store.record_pushes([]) == []


def test_one_delivery_arriving_many_times_at_once_is_stored_once(db_url: str) -> None:
    """GitHub retries and a user's redelivery can arrive side by side; on PostgreSQL
    (transactions in parallel, one per web process) they all pass the dedupe unless intake
    holds its lock. One build; every other copy is "already in progress", none an error."""
    stores = [open_store(db_url) for _ in range(4)]
    answers: list[str] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(stores))

    def deliver(store: SqlStore, rounds: int = 10) -> None:
        barrier.wait()
        for i in range(rounds):
            try:
                answer = store.record_push(push(f"{i:040x}", delivery=f"g{i}"))
                answers.append(answer.ignored or "stored")
            except BaseException as err:
                errors.append(err)

    threads = [threading.Thread(target=deliver, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    try:
        assert errors == []
        assert answers.count("stored") == 10
        assert answers.count("already in progress") == 30
        assert len(stores[0].list_builds(100)) == 10
    finally:
        for s in stores:
            s.close()
