"""The store's drain, fence and reaper (``bot.store.drain``), on SQLite and PostgreSQL."""

from __future__ import annotations

import time

from sqlalchemy import update

from bot.models import WORKER_HOST_LOST, Result
from bot.store.rows import StatusRow
from bot.store.schema import attempts
from bot.store.sql import SqlStore
from tests.unit.dispatch.conftest import push, sha

KEY = "acme/app@main"


def _latest(store: SqlStore, commit: str) -> dict[str, str]:
    return {r.context: f"{r.state}:{r.description}" for r in store.latest("acme/app", commit)}


def _age(store: SqlStore, attempt_id: int, seconds: float) -> None:
    """Makes the attempt's last heartbeat ``seconds`` old (its worker went silent)."""
    with store.tx() as conn:
        conn.execute(
            update(attempts)
            .where(attempts.c.id == attempt_id)
            .values(heartbeat_at=time.time() - seconds)
        )


def test_drain_runs_the_newest_queued_build_and_supersedes_the_older(store: SqlStore) -> None:
    builds = [push(store, sha(n)) for n in (1, 2, 3)]
    other = push(store, sha(9), branch="dev")
    claim = store.claim_key(KEY, "host:1:t:job1")
    assert claim is not None
    assert claim.build.id == builds[-1] and claim.build.sha == sha(3)
    assert store.attempt_state(builds[-1], 1) == Result.RUNNING
    for old, commit in zip(builds[:2], (sha(1), sha(2)), strict=True):
        assert store.attempt_state(old, 1) == Result.CANCELED
        assert _latest(store, commit) == {"wb/build": f"error:Superseded by {sha(3)[:7]}"}
    assert store.attempt_state(other, 1) == Result.QUEUED  # another key is not touched
    assert _latest(store, sha(3))["wb/build"].startswith("pending:")


def test_drain_starts_nothing_while_an_attempt_of_the_key_runs(store: SqlStore) -> None:
    push(store, sha(1))
    assert store.claim_key(KEY, "w1") is not None
    second = push(store, sha(2))
    assert store.claim_key(KEY, "w2") is None
    assert store.attempt_state(second, 1) == Result.QUEUED
    assert store.key_has_queued(KEY)


def test_a_users_redelivery_is_never_superseded_and_runs_in_arrival_order(
    store: SqlStore,
) -> None:
    first = push(store, sha(1))
    claim = store.claim_key(KEY, "w1")
    assert claim is not None
    store.finish_attempt(claim.attempt_id, Result.PASSED, "ok")
    push(store, sha(1))  # the same delivery again after it finished: explicit attempt 2
    newest = push(store, sha(2))
    redelivered = store.claim_key(KEY, "w2")
    assert redelivered is not None and redelivered.explicit
    assert (redelivered.build.id, redelivered.attempt_number) == (first, 2)
    assert store.attempt_state(newest, 1) == Result.QUEUED
    store.finish_attempt(redelivered.attempt_id, Result.PASSED, "ok")
    then = store.claim_key(KEY, "w3")
    assert then is not None and then.build.id == newest


def test_tag_builds_have_their_own_key(store: SqlStore) -> None:
    tag = push(store, sha(1), tag="v1")
    push(store, sha(2))
    assert store.queued_keys() == ["acme/app@v1", KEY]
    claim = store.claim_key("acme/app@v1", "w")
    assert claim is not None and claim.build.id == tag
    assert store.queued_keys() == [KEY]


def test_queued_keys_lists_each_key_once_oldest_first(store: SqlStore) -> None:
    push(store, sha(1), branch="b")
    push(store, sha(2), branch="a")
    push(store, sha(3), branch="b")
    assert store.queued_keys() == ["acme/app@b", "acme/app@a"]
    assert not store.key_has_queued("acme/app@c")


def test_the_fence_holds_for_the_owner_only(store: SqlStore) -> None:
    push(store, sha(1))
    claim = store.claim_key(KEY, "w1")
    assert claim is not None
    assert store.fence(claim.attempt_id, "w1")
    assert not store.fence(claim.attempt_id, "w2")


def test_the_reaper_ends_a_silent_attempt_errored_and_queues_its_build_again(
    store: SqlStore,
) -> None:
    lost_build = push(store, sha(1))
    lost = store.claim_key(KEY, "w1")
    assert lost is not None
    live_build = push(store, sha(2), branch="dev")
    live = store.claim_key("acme/app@dev", "w2")
    assert live is not None
    _age(store, lost.attempt_id, 60)
    reaped = store.reap_lost(lost_after=30)
    assert [(r.attempt_id, r.build_id, r.key) for r in reaped] == [
        (lost.attempt_id, lost_build, KEY)
    ]
    assert store.attempt_state(lost_build, 1) == Result.ERRORED
    detail = store.build_detail(lost_build)
    assert detail is not None and detail.attempts[0].description == WORKER_HOST_LOST
    # The newest push of its key: queued again as attempt 2, its status pending after the error.
    assert [(r.state, r.description) for r in store.statuses_for("acme/app", sha(1))][-2:] == [
        ("error", WORKER_HOST_LOST),
        ("pending", "Queued (attempt 2)"),
    ]
    assert store.attempt_state(lost_build, 2) == Result.QUEUED
    assert store.attempt_state(live_build, 1) == Result.RUNNING
    assert store.reap_lost(lost_after=30) == []  # once
    again = store.claim_key(KEY, "w3")
    assert again is not None and (again.build.id, again.attempt_number) == (lost_build, 2)


def test_a_lost_build_a_later_push_supersedes_is_not_queued_again(store: SqlStore) -> None:
    lost_build = push(store, sha(1))
    lost = store.claim_key(KEY, "w1")
    assert lost is not None
    later = push(store, sha(2))
    _age(store, lost.attempt_id, 60)
    assert [r.attempt_id for r in store.reap_lost(lost_after=30)] == [lost.attempt_id]
    assert store.attempt_state(lost_build, 2) is None
    assert _latest(store, sha(1))["wb/build"] == f"error:{WORKER_HOST_LOST}"
    claim = store.claim_key(KEY, "w2")
    assert claim is not None and claim.build.id == later


def test_a_lost_redelivery_is_queued_again_even_behind_a_later_push(store: SqlStore) -> None:
    first = push(store, sha(1))
    done = store.claim_key(KEY, "w1")
    assert done is not None
    store.finish_attempt(done.attempt_id, Result.PASSED, "ok")
    push(store, sha(1))  # a user's redelivery: explicit attempt 2, never superseded
    rerun = store.claim_key(KEY, "w2")
    assert rerun is not None and rerun.explicit
    later = push(store, sha(2))
    _age(store, rerun.attempt_id, 60)
    store.reap_lost(lost_after=30)
    assert store.attempt_state(first, 3) == Result.QUEUED
    again = store.claim_key(KEY, "w3")  # before the later push: arrival order
    assert again is not None and (again.build.id, again.explicit) == (first, True)
    store.finish_attempt(again.attempt_id, Result.PASSED, "ok")
    then = store.claim_key(KEY, "w4")
    assert then is not None and then.build.id == later


def test_a_reaped_worker_is_fenced_out_of_every_write_the_world_sees(
    store: SqlStore,
) -> None:
    push(store, sha(1))
    claim = store.claim_key(KEY, "zombie")
    assert claim is not None
    _age(store, claim.attempt_id, 60)
    store.reap_lost(lost_after=30)
    before = _latest(store, sha(1))
    row = StatusRow("acme/app", sha(1), "wb/build", "success", "Passed", "http://bot/builds/1")
    assert not store.fence(claim.attempt_id, "zombie")
    assert not store.add_fenced(claim.attempt_id, "zombie", [row])
    assert not store.finish_attempt_fenced(claim.attempt_id, "zombie", Result.PASSED, "Passed")
    assert _latest(store, sha(1)) == before
    detail = store.build_detail(claim.build.id)
    assert detail is not None and detail.attempts[0].state == Result.ERRORED


def test_the_owner_writes_through_the_fence(store: SqlStore) -> None:
    push(store, sha(1))
    claim = store.claim_key(KEY, "w1")
    assert claim is not None
    row = StatusRow("acme/app", sha(1), "wb/build", "success", "Passed", "http://bot/builds/1")
    assert store.add_fenced(claim.attempt_id, "w1", [row])
    assert _latest(store, sha(1)) == {"wb/build": "success:Passed"}
    assert store.finish_attempt_fenced(claim.attempt_id, "w1", Result.PASSED, "Passed")
    assert store.attempt_state(claim.build.id, 1) == Result.PASSED
    assert not store.finish_attempt_fenced(claim.attempt_id, "w1", Result.FAILED, "late")
