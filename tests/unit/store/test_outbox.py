"""The store's status outbox (``bot.store.outbox``): order per context, leases, and a
backlog that collapses after failures."""

from __future__ import annotations

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
