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
from bot.web.intake_writer import IntakeBusy, IntakeTimeout, IntakeWriter
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


def held_burst(
    counting: CountingStore,
    writer: IntakeWriter,
    pushes: list[NewPush],
    subs: Submitters | None = None,
) -> Submitters:
    """Submits ``pushes[0]``, holds its transaction until the others are all queued behind
    it, then lets the writer go on; returns once every submitter has its result."""
    subs = subs or Submitters(writer)
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


def hook_services(tmp_path: Path) -> Services:
    """The web's services for one configured repository (acme/app), webhook secret "s"."""
    return build_services(
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


def test_the_webhook_answers_503_with_retry_after_when_the_queue_is_full(tmp_path: Path) -> None:
    services = hook_services(tmp_path)
    app = create_app(services=services)
    app.extensions["wercker_bot_intake"] = IntakeWriter(services.store, max_queue=0)
    body = json.dumps(push_payload("acme/app", "refs/heads/main", "a" * 40)).encode()
    resp = app.test_client().post(
        "/hooks/github", data=body, headers=webhook_headers(body, "s", delivery="g1")
    )
    assert resp.status_code == 503
    assert resp.headers["Retry-After"] == str(IntakeBusy.retry_after)
    assert resp.get_json()["error"] == "the store is unavailable; redeliver this webhook later"
    assert services.store.list_builds() == []


def test_each_distinct_key_of_a_batch_is_kicked_once_after_its_answers(
    store: SqlStore, counting: CountingStore, caplog: pytest.LogCaptureFixture
) -> None:
    kicked: list[str] = []
    answered_first: list[bool] = []

    def kick(key: str) -> None:
        # The requests of the key's pushes get their answers (their threads end) while the
        # writer waits here: the kicks do not hold the answers back (threads[i] sent burst[i]).
        mine = [t for t, p in zip(subs.threads, burst, strict=True) if key.endswith("@" + p.branch)]
        deadline = time.monotonic() + WAIT
        while any(t.is_alive() for t in mine) and time.monotonic() < deadline:
            time.sleep(0.005)
        answered_first.append(not any(t.is_alive() for t in mine))
        kicked.append(key)
        if key == "acme/app@b2":
            raise OSError("the queue's database went away")

    writer = IntakeWriter(counting, max_wait=0.0, kick=kick)
    subs = Submitters(writer)
    # The held first batch, then one batch: three pushes to b1 (one key), one to b2, and a
    # redelivery of the first b1 push (ignored: it wakes nobody).
    first_b1 = new_push(delivery_id="k1", branch="b1", ref="refs/heads/b1", sha="1" * 40)
    burst = [
        new_push(delivery_id="k0", branch="b0", ref="refs/heads/b0", sha="a" * 40),
        first_b1,
        new_push(delivery_id="k2", branch="b1", ref="refs/heads/b1", sha="2" * 40),
        new_push(delivery_id="k3", branch="b1", ref="refs/heads/b1", sha="3" * 40),
        new_push(delivery_id="k4", branch="b2", ref="refs/heads/b2", sha="4" * 40),
        first_b1,
    ]
    try:
        held_burst(counting, writer, burst, subs)
    finally:
        writer.close()
    assert [len(b) for b in counting.batches] == [1, 5]
    assert kicked == ["acme/app@b0", "acme/app@b1", "acme/app@b2"]  # once per key and batch
    assert answered_first == [True, True, True]
    assert all(isinstance(r, Intake) for r in subs.results.values())
    failed = "waking the workers for acme/app@b2 failed"
    assert any(failed in r.getMessage() for r in caplog.records)
    assert len(store.list_builds()) == 5  # the failed kick lost nothing


def test_a_request_waits_at_most_submit_timeout_then_503s_and_the_redelivery_is_deduped(
    store: SqlStore, counting: CountingStore
) -> None:
    writer = IntakeWriter(counting, max_wait=0.0, submit_timeout=0.2)
    held = new_push(delivery_id="slow", sha="5" * 40)
    began = time.monotonic()
    with pytest.raises(IntakeTimeout) as timed_out:  # the store blocks: nothing answers
        writer.submit(held)
    assert time.monotonic() - began < WAIT / 2
    assert isinstance(timed_out.value, StoreUnavailable)
    assert "may still commit" in timed_out.value.reason
    assert counting.entered.is_set()
    # Queued behind the hung transaction: taken out of the queue, so never stored.
    with pytest.raises(IntakeTimeout, match="waiting for a transaction"):
        writer.submit(branch_push(7))
    assert writer.waiting == 0
    counting.gate.set()  # the store comes back: the first push commits after all
    until(lambda: len(store.list_builds()) == 1)
    again = writer.submit(new_push(delivery_id="slow", sha="5" * 40))  # GitHub's redelivery
    writer.close()
    [build] = store.list_builds()
    assert again == Intake(build.id, 1, "already in progress")  # not a second build
    assert counting.batches == [["slow"], ["slow"]]  # d7 never reached the store


def test_the_webhook_answers_503_when_the_store_hangs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    services = hook_services(tmp_path)
    app = create_app(services=services)
    released = threading.Event()

    def hung(pushes: Sequence[NewPush]) -> list[Intake]:
        assert released.wait(WAIT)
        raise StoreUnavailable("connection reset")

    monkeypatch.setattr(services.store, "record_pushes", hung)
    app.extensions["wercker_bot_intake"] = IntakeWriter(services.store, submit_timeout=0.1)
    body = json.dumps(push_payload("acme/app", "refs/heads/main", "a" * 40)).encode()
    try:
        resp = app.test_client().post(
            "/hooks/github", data=body, headers=webhook_headers(body, "s", delivery="h1")
        )
    finally:
        released.set()
    assert resp.status_code == 503 and resp.headers["Retry-After"].isdigit()
