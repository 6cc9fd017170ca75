"""The status outbox: its retry and backoff decisions against the in-memory forge
(``tests/fakes/forge.py``), and order, outages and rate limits against the recording GitHub
fake through ``GitHubForge``."""

from __future__ import annotations

import time
from pathlib import Path

from bot.forges.github import GitHubForge
from bot.outbox import StatusDelivery
from bot.settings import GitHubSettings
from bot.store.rows import OutboxRow
from bot.store.sql import SqlStore
from tests.fakes.forge import FakeForge
from tests.harness.builds import new_push, open_store
from tests.harness.github_fake import GitHubFake

SHA = "c" * 40
TOKEN = "ghs_outboxTokenValue"


def _store(tmp_path: Path) -> SqlStore:
    store = open_store(tmp_path / "db.sqlite3")
    store.record_push(new_push(sha=SHA))
    return store


def _github(github_fake: GitHubFake) -> GitHubForge:
    return GitHubForge(GitHubSettings(api_url=github_fake.url, token=TOKEN))


def _due_now(store: SqlStore) -> None:
    from sqlalchemy import update

    from bot.store.schema import outbox

    with store.tx() as conn:
        conn.execute(update(outbox).values(next_try_at=0.0))


def test_pending_then_final_in_order(tmp_path: Path, github_fake: GitHubFake) -> None:
    store = _store(tmp_path)
    store.enqueue_status("acme/app", SHA, "wb/build", "success", "Passed", "http://bot/builds/1")
    delivery = StatusDelivery(store, _github(github_fake))
    delivery.deliver_once()
    delivery.deliver_once()
    states = [s["state"] for s in github_fake.statuses("acme/app", SHA)]
    assert states == ["pending", "success"]
    assert github_fake.violations == []


def test_github_outage_delays_but_loses_nothing(tmp_path: Path, github_fake: GitHubFake) -> None:
    store = _store(tmp_path)
    delivery = StatusDelivery(store, _github(github_fake))
    github_fake.down()
    assert delivery.deliver_once() == 0
    store.enqueue_status("acme/app", SHA, "wb/build", "failure", "Step 'x' failed (exit 2)", "u")
    github_fake.up()
    _due_now(store)
    delivery.deliver_once()
    assert github_fake.final_states("acme/app", SHA) == {"wb/build": "failure"}
    rows = store.statuses_for("acme/app", SHA)
    assert [r.outcome for r in rows] == ["superseded", "delivered"]


def test_rate_limit_is_honoured(tmp_path: Path, github_fake: GitHubFake) -> None:
    store = _store(tmp_path)
    delivery = StatusDelivery(store, _github(github_fake))
    github_fake.rate_limit(1, retry_after=120)
    delivery.deliver_once()
    row = store.statuses_for("acme/app", SHA)[0]
    assert row.outcome == "queued" and row.next_try_at - row.created_at >= 119
    assert delivery.deliver_once() == 0  # not due yet
    assert TOKEN not in row.last_error


def test_permanent_failure_is_recorded_with_reason(tmp_path: Path, github_fake: GitHubFake) -> None:
    store = _store(tmp_path)
    github_fake.missing_commit(SHA)
    StatusDelivery(store, _github(github_fake)).deliver_once()
    row = store.statuses_for("acme/app", SHA)[0]
    assert row.outcome == "failed" and "No commit found" in row.last_error


# The delivery's decisions, against the in-memory forge ------------------------------------


def _row(store: SqlStore, index: int = 0) -> OutboxRow:
    return store.statuses_for("acme/app", SHA)[index]


def _deliver_timed(delivery: StatusDelivery) -> tuple[float, float]:
    """One ``deliver_once``, with the clock just before and just after it."""
    before = time.time()
    delivery.deliver_once()
    return before, time.time()


def test_a_delivered_row_is_done_and_posted_once(tmp_path: Path) -> None:
    store, forge = _store(tmp_path), FakeForge()
    delivery = StatusDelivery(store, forge)
    assert delivery.deliver_once() == 1
    assert delivery.deliver_once() == 0
    assert [(p.context, p.state, p.description, p.attempt) for p in forge.posted] == [
        ("wb/build", "pending", "Queued", 1)
    ]
    assert _row(store).outcome == "delivered" and _row(store).tries == 1


def test_a_5xx_that_names_no_time_backs_off_by_the_forges_backoff(tmp_path: Path) -> None:
    store, forge = _store(tmp_path), FakeForge()
    delivery = StatusDelivery(store, forge)
    forge.server_error(2)
    before, after = _deliver_timed(delivery)
    row = _row(store)
    assert row.outcome == "queued" and row.tries == 1 and row.last_error == "fake 503"
    assert forge.backoff(1) == 2.0
    assert before + 2.0 <= row.next_try_at <= after + 2.0
    assert delivery.deliver_once() == 0 and len(forge.attempts) == 1  # not due yet
    _due_now(store)
    before, after = _deliver_timed(delivery)
    # The second try is attempt 2: its wait doubles.
    assert [a.attempt for a in forge.attempts] == [1, 2]
    assert forge.backoff(2) == 4.0
    assert before + 4.0 <= _row(store).next_try_at <= after + 4.0
    _due_now(store)
    assert delivery.deliver_once() == 1
    assert _row(store).outcome == "delivered" and _row(store).tries == 3


def test_a_rate_limit_waits_until_the_time_the_forge_named(tmp_path: Path) -> None:
    store, forge = _store(tmp_path), FakeForge()
    delivery = StatusDelivery(store, forge)
    forge.rate_limited(retry_after=120)
    before, after = _deliver_timed(delivery)
    row = _row(store)
    assert before + 120 <= row.next_try_at <= after + 120
    assert row.last_error == "fake rate limit"
    assert delivery.deliver_once() == 0 and len(forge.attempts) == 1
    _due_now(store)
    assert delivery.deliver_once() == 1


def test_an_unreachable_forge_is_retried_and_loses_nothing(tmp_path: Path) -> None:
    store, forge = _store(tmp_path), FakeForge()
    delivery = StatusDelivery(store, forge)
    forge.unreachable()
    assert delivery.deliver_once() == 0
    store.enqueue_status("acme/app", SHA, "wb/build", "success", "Passed", "u")
    _due_now(store)
    delivery.deliver_once()
    assert forge.final_states("acme/app", SHA) == {"wb/build": "success"}
    assert [r.outcome for r in store.statuses_for("acme/app", SHA)] == [
        "superseded",
        "delivered",
    ]


def test_a_403_fails_for_good_with_the_forges_reason(tmp_path: Path) -> None:
    store, forge = _store(tmp_path), FakeForge()
    delivery = StatusDelivery(store, forge)
    forge.forbidden()
    assert delivery.deliver_once() == 0
    row = _row(store)
    assert row.outcome == "failed" and row.last_error == "fake 403: no write access"
    _due_now(store)
    assert delivery.deliver_once() == 0 and len(forge.attempts) == 1  # never tried again


def test_each_context_is_posted_in_order_pending_before_final(tmp_path: Path) -> None:
    store, forge = _store(tmp_path), FakeForge()
    store.enqueue_status("acme/app", SHA, "wb/build", "failure", "Step failed", "u")
    store.enqueue_status("acme/app", SHA, "wb/other", "success", "Passed", "u")
    delivery = StatusDelivery(store, forge)
    assert delivery.deliver_once() == 3  # one pass posts every due row, one at a time
    posted = [(p.context, p.state) for p in forge.posted]
    assert [s for c, s in posted if c == "wb/build"] == ["pending", "failure"]
    assert [s for c, s in posted if c == "wb/other"] == ["success"]
    assert delivery.deliver_once() == 0
