"""Fencing an attempt (``bot.dispatch.fence``): once a reaper has ended an attempt, its
worker can neither post a status, nor end the attempt, nor push an image."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from sqlalchemy import update

from bot.dispatch.base import AttemptFenced, StoreFence
from bot.dispatch.fence import FencedEnginePusher, FencedPusher, FencedStore, fenced_services
from bot.logs import Log
from bot.masking import Masker
from bot.models import Result
from bot.pushers.model import ImageSpec, PushResult, Target
from bot.reporter import Reporter
from bot.services import Services
from bot.store.schema import attempts
from bot.store.sql import SqlStore
from tests.fakes.store import FakeStore
from tests.harness.builds import open_store
from tests.unit.dispatch.conftest import push, sha

KEY = "acme/app@main"
TOKEN = "host:1:t:job7"


class RecordingPusher:
    """A ``Pusher`` that records what it was asked to push."""

    def __init__(self) -> None:
        self.pushed: list[Target] = []

    def push(self, source: ImageSpec, target: Target, log: Log) -> PushResult:
        self.pushed.append(target)
        return PushResult(target.registry, target.repository, target.tags, "sha256:" + "0" * 64)

    def sweep(self) -> list[Path]:
        return []


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[SqlStore]:
    store = open_store(tmp_path / "db.sqlite3")
    yield store
    store.close()


def _claimed(store: SqlStore) -> StoreFence:
    push(store, sha(1))
    claim = store.claim_key(KEY, TOKEN)
    assert claim is not None
    return StoreFence(store, claim.attempt_id, TOKEN)


def _reap(store: SqlStore, attempt_id: int) -> None:
    with store.tx() as conn:
        conn.execute(
            update(attempts)
            .where(attempts.c.id == attempt_id)
            .values(heartbeat_at=time.time() - 99)
        )
    assert [r.attempt_id for r in store.reap_lost(lost_after=30)] == [attempt_id]


def _reporter(store: FencedStore) -> Any:
    return Reporter("wb", "http://bot").for_build(store, "acme/app", sha(1), 1, Masker())


def test_a_live_owner_posts_statuses_and_ends_its_attempt(sqlite_store: SqlStore) -> None:
    fence = _claimed(sqlite_store)
    fenced = FencedStore(sqlite_store, fence)
    _reporter(fenced).attempt_finished(["build"], Result.PASSED, "Passed")
    fenced.finish_attempt(fence.attempt_id, Result.PASSED, "Passed")
    latest = {r.context: r.state for r in sqlite_store.latest("acme/app", sha(1))}
    assert latest == {"wb/build": "success"}
    assert sqlite_store.attempt_state(1, 1) == Result.PASSED


def test_a_reaped_worker_writes_no_status_and_no_end(sqlite_store: SqlStore) -> None:
    fence = _claimed(sqlite_store)
    fenced = FencedStore(sqlite_store, fence)
    _reap(sqlite_store, fence.attempt_id)
    resolved = sqlite_store.statuses_for("acme/app", sha(1))
    with pytest.raises(AttemptFenced):
        _reporter(fenced).attempt_finished(["build"], Result.PASSED, "Passed")
    with pytest.raises(AttemptFenced):
        fenced.finish_attempt(fence.attempt_id, Result.PASSED, "Passed")
    with pytest.raises(AttemptFenced):
        fenced.error_open_pipelines(fence.attempt_id, "late")
    assert sqlite_store.statuses_for("acme/app", sha(1)) == resolved
    assert sqlite_store.attempt_state(1, 1) == Result.ERRORED
    assert fence.lost


def test_the_log_writers_heartbeat_goes_through_the_fence(sqlite_store: SqlStore) -> None:
    fence = _claimed(sqlite_store)
    fenced = FencedStore(sqlite_store, fence)
    fenced.heartbeat(fence.attempt_id)
    assert not fence.lost
    _reap(sqlite_store, fence.attempt_id)
    with pytest.raises(AttemptFenced):
        fenced.heartbeat(fence.attempt_id)


def test_a_reaped_worker_pushes_no_image(sqlite_store: SqlStore) -> None:
    fence = _claimed(sqlite_store)
    inner = RecordingPusher()
    pusher = FencedPusher(inner, fence)
    target = Target("registry.example", "acme/app", ("main",))
    spec = cast(ImageSpec, object())
    pusher.push(spec, target, cast(Log, None))
    assert inner.pushed == [target]
    _reap(sqlite_store, fence.attempt_id)
    with pytest.raises(AttemptFenced):
        pusher.push(spec, target, cast(Log, None))
    assert inner.pushed == [target]


def test_fenced_services_fence_the_store_and_both_pushers(sqlite_store: SqlStore) -> None:
    fence = _claimed(sqlite_store)
    services = Services(
        settings=cast(Any, None), store=sqlite_store, pusher=RecordingPusher(),
        engine_pusher=cast(Any, RecordingPusher()), reporter=cast(Any, None),
        forge=cast(Any, None), status_delivery=cast(Any, None), runners=cast(Any, None),
        dispatcher=cast(Any, None),
    )  # fmt: skip
    fenced = fenced_services(services, fence)
    assert isinstance(fenced.store, FencedStore)
    _reap(sqlite_store, fence.attempt_id)
    target = Target("registry.example", "acme/app", ("main",))
    with pytest.raises(AttemptFenced):
        fenced.pusher.push(cast(ImageSpec, object()), target, cast(Log, None))
    with pytest.raises(AttemptFenced):
        fenced.engine_pusher.push(cast(Any, object()), target, cast(Log, None))
    # Everything else is the store's own: reads still work.
    assert fenced.store.attempt_state(1, 1) == Result.ERRORED
    assert fenced.reporter is services.reporter and fenced.settings is services.settings


def test_the_fake_store_fences_like_the_sql_store() -> None:
    fake = FakeStore(Reporter("wb", "http://bot"))
    fake.push(sha(1))
    claim = fake.claim_next(TOKEN)
    assert claim is not None
    fence = StoreFence(cast(Any, fake), claim.attempt_id, TOKEN)
    fenced = FencedStore(cast(Any, fake), fence)
    fenced.heartbeat(claim.attempt_id)
    before = fake.final_statuses("acme/app", sha(1))
    fake.lose(claim.attempt_id)
    with pytest.raises(AttemptFenced):
        _reporter(fenced).attempt_finished(["build"], Result.PASSED, "Passed")
    with pytest.raises(AttemptFenced):
        fenced.finish_attempt(claim.attempt_id, Result.PASSED, "Passed")
    assert fake.final_statuses("acme/app", sha(1)) == before
    assert fake.attempts[claim.attempt_id].state is Result.ERRORED


class TaggingPusher:
    """A pusher that "uploads" (``uploading`` runs), then moves each tag after
    ``Target.guard_tag``, as both real pushers do; ``moved`` are the tags moved."""

    def __init__(self, uploading: Callable[[], None]) -> None:
        self.uploading = uploading
        self.moved: list[str] = []

    def push(self, source: object, target: Target, log: Log) -> PushResult:
        self.uploading()
        for tag in target.tags:
            target.guard_tag()
            self.moved.append(tag)
        return PushResult(target.registry, target.repository, target.tags, "sha256:" + "0" * 64)

    def sweep(self) -> list[Path]:
        return []


@pytest.mark.parametrize("wrapper", [FencedPusher, FencedEnginePusher])
def test_both_pushers_check_the_fence_again_right_before_each_tag(
    sqlite_store: SqlStore, wrapper: Callable[[Any, Any], Any]
) -> None:
    fence = _claimed(sqlite_store)
    hooked: list[str] = []
    target = Target(
        "registry.example", "acme/app", ("main", "v1"), before_tag=lambda: hooked.append("x")
    )
    live = TaggingPusher(lambda: None)
    wrapper(live, fence).push(object(), target, cast(Log, None))
    assert live.moved == ["main", "v1"] and hooked == ["x", "x"]  # a hook it had still runs

    # Paused during the upload and reaped meanwhile: the fence refuses before any tag.
    paused = TaggingPusher(lambda: _reap(sqlite_store, fence.attempt_id))
    with pytest.raises(AttemptFenced):
        wrapper(paused, fence).push(object(), target, cast(Log, None))
    assert paused.moved == []
    assert fence.lost
