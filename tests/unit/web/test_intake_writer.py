"""The intake's group commit (``bot.web.intake_writer.IntakeWriter``) on a real SQLite store:
concurrent submits share transactions, each gets its own answer, a failing batch answers
every member, a full queue is refused with 503, and closing drains what is queued."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from bot.app import create_app
from bot.errors import StoreUnavailable
from bot.services import Services
from bot.settings import parse_settings
from bot.store.rows import Intake, NewPush
from bot.store.sql import SqlStore
from bot.web.intake_writer import IntakeBusy, IntakeWriter
from bot.wiring import build_services
from tests.harness.builds import new_push, open_store
from tests.harness.github_fake import push_payload, webhook_headers

WAIT = 10.0


class CountingStore:
    """The real store's ``record_pushes``, counted (one call: one transaction). ``gate``
    holds the first transaction until released, so the test decides what queues behind it;
    ``fail`` may raise instead of storing a batch."""

    def __init__(self, store: SqlStore) -> None:
        self.store = store
        self.batches: list[list[str]] = []
        self.gate = threading.Event()
        self.entered = threading.Event()
        self.fail: Callable[[Sequence[NewPush]], None] | None = None

    def record_push(self, push: NewPush) -> Intake:
        return self.record_pushes([push])[0]

    def record_pushes(self, pushes: Sequence[NewPush]) -> list[Intake]:
        first = not self.batches
        self.batches.append([p.delivery_id for p in pushes])
        if first:
            self.entered.set()
            assert self.gate.wait(WAIT)
        if self.fail is not None:
            self.fail(pushes)
        return self.store.record_pushes(pushes)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlStore]:
    store = open_store(tmp_path / "db.sqlite3")
    yield store
    store.close()


@pytest.fixture
def counting(store: SqlStore) -> CountingStore:
    return CountingStore(store)


def branch_push(i: int, delivery: str | None = None) -> NewPush:
    """Push ``i``: its own branch and commit, so each is a new queued build."""
    return new_push(
        delivery_id=delivery or f"d{i}",
        branch=f"b{i}",
        ref=f"refs/heads/b{i}",
        sha=f"{i + 1:040x}",
    )


class Submitters:
    """Threads that each submit one push and keep what they got (answer or error)."""

    def __init__(self, writer: IntakeWriter) -> None:
        self.writer = writer
        self.results: dict[str, Intake | BaseException] = {}
        self.threads: list[threading.Thread] = []

    def start(self, push: NewPush) -> None:
        def run() -> None:
            try:
                self.results[push.delivery_id] = self.writer.submit(push)
            except BaseException as err:  # the test asserts on it
                self.results[push.delivery_id] = err

        thread = threading.Thread(target=run)
        thread.start()
        self.threads.append(thread)

    def join(self) -> None:
        for thread in self.threads:
            thread.join(WAIT)
            assert not thread.is_alive()


def until(predicate: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def held_burst(counting: CountingStore, writer: IntakeWriter, pushes: list[NewPush]) -> Submitters:
    """Submits ``pushes[0]``, holds its transaction until the others are all queued behind
    it, then lets the writer go on; returns once every submitter has its result."""
    subs = Submitters(writer)
    subs.start(pushes[0])
    assert counting.entered.wait(WAIT)
    for push in pushes[1:]:
        subs.start(push)
    until(lambda: writer.waiting == len(pushes) - 1)
    counting.gate.set()
    subs.join()
    return subs


def test_concurrent_submits_share_transactions_and_each_gets_its_own_answer(
    store: SqlStore, counting: CountingStore
) -> None:
    writer = IntakeWriter(counting, max_wait=0.0)
    pushes = [branch_push(i) for i in range(16)]
    subs = held_burst(counting, writer, pushes)
    assert [len(b) for b in counting.batches] == [1, 15]  # 2 transactions for 16 pushes
    answers = subs.results
    assert all(isinstance(a, Intake) for a in answers.values())
    build_ids = {d: a.build_id for d, a in answers.items() if isinstance(a, Intake)}
    assert len(set(build_ids.values())) == 16
    for push in pushes:  # each answer names the build of its own push
        detail = store.build_detail(build_ids[push.delivery_id] or 0)
        assert detail is not None and detail.sha == push.sha and detail.branch == push.branch
        assert answers[push.delivery_id] == Intake(detail.id, 1)
    writer.close()


def test_a_redelivery_in_the_same_batch_is_answered_as_in_progress(
    store: SqlStore, counting: CountingStore
) -> None:
    writer = IntakeWriter(counting, max_wait=0.0)
    first, again = branch_push(1, "same"), branch_push(1, "same")
    subs = Submitters(writer)
    subs.start(branch_push(0))
    assert counting.entered.wait(WAIT)
    subs.start(first)
    until(lambda: writer.waiting == 1)
    t = threading.Thread(target=lambda: subs.results.update(again=writer.submit(again)))
    t.start()
    until(lambda: writer.waiting == 2)
    counting.gate.set()
    subs.join()
    t.join(WAIT)
    assert counting.batches[1] == ["same", "same"]
    stored, ignored = subs.results["same"], subs.results["again"]
    assert isinstance(stored, Intake) and stored.ignored is None
    assert ignored == Intake(stored.build_id, 1, "already in progress")
    writer.close()


def test_a_batch_the_store_cannot_write_answers_every_member_503(
    store: SqlStore, counting: CountingStore
) -> None:
    def disk_full(pushes: Sequence[NewPush]) -> None:
        raise StoreUnavailable("database or disk is full")

    counting.fail = disk_full
    writer = IntakeWriter(counting, max_wait=0.0)
    subs = held_burst(counting, writer, [branch_push(i) for i in range(6)])
    assert len(subs.results) == 6
    for error in subs.results.values():
        assert isinstance(error, StoreUnavailable) and error.reason == "database or disk is full"
    assert len(counting.batches) == 2  # not retried one by one: it would fail the same way
    assert store.list_builds() == []
    writer.close()


def test_a_batch_failing_otherwise_is_retried_one_by_one(
    store: SqlStore, counting: CountingStore
) -> None:
    def poison(pushes: Sequence[NewPush]) -> None:
        if any(p.delivery_id == "poison" for p in pushes):
            raise ValueError("this delivery breaks the batch")

    counting.fail = poison
    writer = IntakeWriter(counting, max_wait=0.0)
    pushes = [branch_push(0), branch_push(1), branch_push(2, "poison"), branch_push(3)]
    subs = held_burst(counting, writer, pushes)
    assert counting.batches[1] == ["d1", "poison", "d3"]  # then each alone
    assert sorted(map(tuple, counting.batches[2:])) == [("d1",), ("d3",), ("poison",)]
    error = subs.results["poison"]
    assert isinstance(error, ValueError) and "breaks the batch" in str(error)
    for delivery in ("d0", "d1", "d3"):
        answer = subs.results[delivery]
        assert isinstance(answer, Intake) and answer.attempt == 1
    assert len(store.list_builds()) == 3
    writer.close()


def test_a_full_queue_is_refused_at_once(store: SqlStore, counting: CountingStore) -> None:
    writer = IntakeWriter(counting, max_wait=0.0, max_queue=2)
    subs = Submitters(writer)
    subs.start(branch_push(0))  # taken into the held transaction: no longer waiting
    assert counting.entered.wait(WAIT)
    subs.start(branch_push(1))
    subs.start(branch_push(2))
    until(lambda: writer.waiting == 2)
    with pytest.raises(IntakeBusy) as refused:
        writer.submit(branch_push(3))
    assert refused.value.retry_after > 0
    counting.gate.set()
    subs.join()
    assert sorted(subs.results) == ["d0", "d1", "d2"]
    assert all(isinstance(a, Intake) for a in subs.results.values())
    assert len(store.list_builds()) == 3
    writer.close()


def test_close_drains_what_is_queued_then_refuses(store: SqlStore, counting: CountingStore) -> None:
    writer = IntakeWriter(counting, max_wait=0.0, max_batch=2)
    subs = Submitters(writer)
    subs.start(branch_push(0))
    assert counting.entered.wait(WAIT)
    for i in range(1, 6):
        subs.start(branch_push(i))
    until(lambda: writer.waiting == 5)
    drained: list[bool] = []
    closer = threading.Thread(target=lambda: drained.append(writer.close(WAIT)))
    closer.start()
    until(lambda: writer._closed)
    counting.gate.set()
    closer.join(WAIT)
    subs.join()
    assert drained == [True] and not writer.running
    assert [len(b) for b in counting.batches] == [1, 2, 2, 1]  # max_batch bounds each
    assert all(isinstance(a, Intake) for a in subs.results.values())
    assert len(store.list_builds()) == 6
    with pytest.raises(StoreUnavailable, match="shutting down"):
        writer.submit(branch_push(9))
    assert len(store.list_builds()) == 6


def test_the_thread_ends_when_idle_and_starts_again(store: SqlStore) -> None:
    writer = IntakeWriter(store, idle_exit=0.05)
    assert not writer.running
    assert writer.submit(branch_push(0)).attempt == 1
    until(lambda: not writer.running)
    assert writer.submit(branch_push(1)).attempt == 1
    assert writer.running
    assert writer.close()


def test_the_webhook_answers_503_with_retry_after_when_the_queue_is_full(tmp_path: Path) -> None:
    services: Services = build_services(
        parse_settings(
            {
                "data_dir": str(tmp_path),
                "github": {"webhook_secret": "s"},
                "repos": {"acme/app": {"clone_url": "file:///nowhere"}},
            },
            {},
            base_dir=tmp_path,
        )
    )
    app = create_app(services=services)
    app.extensions["wercker_bot_intake"] = IntakeWriter(services.store, max_queue=0)
    body = json.dumps(push_payload("acme/app", "refs/heads/main", "a" * 40)).encode()
    resp = app.test_client().post(
        "/hooks/github", data=body, headers=webhook_headers(body, "s", delivery="g1")
    )
    assert resp.status_code == 503
    assert resp.headers["Retry-After"] == str(IntakeBusy.retry_after)
    assert "nothing was stored" in resp.get_json()["error"]
    assert services.store.list_builds() == []


def test_each_stored_push_kicks_its_workers_after_its_answer_and_a_failed_kick_loses_nothing(
    store: SqlStore, caplog: pytest.LogCaptureFixture
) -> None:
    kicked: list[str] = []

    def kick(push: NewPush) -> None:
        kicked.append(push.delivery_id)
        if push.delivery_id == "k2":
            raise OSError("the queue's database went away")

    writer = IntakeWriter(store, kick=kick)
    try:
        first = writer.submit(new_push(delivery_id="k1", sha="1" * 40))
        again = writer.submit(new_push(delivery_id="k1", sha="1" * 40))  # in progress
        second = writer.submit(new_push(delivery_id="k2", sha="2" * 40))
    finally:
        writer.close()
    assert again.ignored == "already in progress" and second.build_id is not None
    assert kicked == ["k1", "k2"]  # the ignored redelivery wakes nobody
    assert first.build_id is not None and store.attempt_state(second.build_id, 1) == "queued"
    assert any("waking the workers for acme/app failed" in r.getMessage() for r in caplog.records)
