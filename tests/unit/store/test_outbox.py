"""The store's status outbox (``bot.store.outbox``): order per context, leases, and a
backlog that collapses after failures."""

from __future__ import annotations

import threading

from bot.store.sql import SqlStore
from tests.unit.store.helpers import push


def test_outbox_delivers_each_context_in_order(store: SqlStore) -> None:
    store.record_push(push("a" * 40))
    store.enqueue_status("acme/app", "a" * 40, "wb/build", "success", "done", "u")
    first = store.claim_statuses()
    assert sorted((r.context, r.state) for r in first) == [
        ("wb/build", "pending"),
        ("wb/deploy", "pending"),
    ]
    # Leased rows are not handed out twice, and the next row of a context waits its turn.
    assert store.claim_statuses() == []
    for row in first:
        store.status_delivered(row.id)
    assert [(r.context, r.state) for r in store.claim_statuses()] == [("wb/build", "success")]


def test_outbox_backlog_collapses_after_failures(store: SqlStore) -> None:
    store.record_push(push("a" * 40))
    rows = store.claim_statuses()
    for row in rows:
        store.status_retry(row.id, 0.0, "503 from GitHub")
    store.enqueue_status("acme/app", "a" * 40, "wb/build", "success", "done", "u")
    due = {(r.context, r.state) for r in store.claim_statuses()}
    assert due == {("wb/build", "success"), ("wb/deploy", "pending")}
    outcomes = [r.outcome for r in store.statuses_for("acme/app", "a" * 40)]
    assert outcomes.count("superseded") == 1


def test_concurrent_senders_never_lease_a_row_twice(store: SqlStore) -> None:
    # On PostgreSQL the senders' transactions run side by side (bot.outbox on many hosts).
    for n in range(60):
        store.enqueue_status("acme/app", f"{n:040x}", "wb/build", "pending", "Queued", "u")
    leased: list[int] = []
    lock = threading.Lock()
    barrier = threading.Barrier(4)

    def send() -> None:
        barrier.wait()
        while rows := store.claim_statuses(limit=3):
            with lock:
                leased.extend(r.id for r in rows)
            for row in rows:
                store.status_delivered(row.id)

    threads = [threading.Thread(target=send) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(leased) == 60 and len(set(leased)) == 60
    assert store.outbox_backlog() == 0
