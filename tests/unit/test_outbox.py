"""The status outbox against the recording GitHub fake: order, outages, rate limits."""

from __future__ import annotations

from pathlib import Path

from bot.forges.github import StatusClient
from bot.outbox import StatusDelivery
from bot.store.store import Store
from tests.harness.builds import new_push
from tests.harness.github_fake import GitHubFake

SHA = "c" * 40
TOKEN = "ghs_outboxTokenValue"


def _store(tmp_path: Path) -> Store:
    store = Store(tmp_path / "db.sqlite3")
    store.record_push(new_push(sha=SHA), "http://bot/builds/{id}")
    return store


def _due_now(store: Store) -> None:
    from sqlalchemy import update

    from bot.store.schema import outbox

    with store.tx() as conn:
        conn.execute(update(outbox).values(next_try_at=0.0))


def test_pending_then_final_in_order(tmp_path: Path, github_fake: GitHubFake) -> None:
    store = _store(tmp_path)
    store.enqueue_status("acme/app", SHA, "wb/build", "success", "Passed", "http://bot/builds/1")
    delivery = StatusDelivery(store, StatusClient(github_fake.url, TOKEN))
    delivery.deliver_once()
    delivery.deliver_once()
    states = [s["state"] for s in github_fake.statuses("acme/app", SHA)]
    assert states == ["pending", "success"]
    assert github_fake.violations == []


def test_github_outage_delays_but_loses_nothing(tmp_path: Path, github_fake: GitHubFake) -> None:
    store = _store(tmp_path)
    delivery = StatusDelivery(store, StatusClient(github_fake.url, TOKEN))
    github_fake.down()
    assert delivery.deliver_once() == 0
    store.enqueue_status("acme/app", SHA, "wb/build", "failure", "Step 'x' failed (exit 2)", "u")
    github_fake.up()
    _due_now(store)
    delivery.deliver_once()
    assert github_fake.final_states("acme/app", SHA) == {"wb/build": "failure"}
    rows = store.statuses_for("acme/app", SHA)
    assert [r["outcome"] for r in rows] == ["superseded", "delivered"]


def test_rate_limit_is_honoured(tmp_path: Path, github_fake: GitHubFake) -> None:
    store = _store(tmp_path)
    delivery = StatusDelivery(store, StatusClient(github_fake.url, TOKEN))
    github_fake.rate_limit(1, retry_after=120)
    delivery.deliver_once()
    row = store.statuses_for("acme/app", SHA)[0]
    assert row["outcome"] == "queued" and row["next_try_at"] - row["created_at"] >= 119
    assert delivery.deliver_once() == 0  # not due yet
    assert TOKEN not in row["last_error"]


def test_permanent_failure_is_recorded_with_reason(tmp_path: Path, github_fake: GitHubFake) -> None:
    store = _store(tmp_path)
    github_fake.missing_commit(SHA)
    StatusDelivery(store, StatusClient(github_fake.url, TOKEN)).deliver_once()
    row = store.statuses_for("acme/app", SHA)[0]
    assert row["outcome"] == "failed" and "No commit found" in row["last_error"]
