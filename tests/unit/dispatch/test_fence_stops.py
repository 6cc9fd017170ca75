"""A refused fence stops its attempt (``StoreFence.on_refused``), whoever meets the refusal:
the dispatcher's beat, the log writer's heartbeat, or a fenced write."""

from __future__ import annotations

import threading
from typing import Any, cast

import pytest

from bot.dispatch.base import FENCE_REFUSED, AttemptFenced, StoreFence
from bot.dispatch.fence import FencedStore
from bot.dispatch.procrastinate import _Beat
from bot.models import Result
from bot.reporter import Reporter
from bot.runners.base import Abort
from tests.fakes.store import FakeStore
from tests.unit.dispatch.conftest import sha

TOKEN = "host:1:t:job7"


def _claimed() -> tuple[FakeStore, StoreFence, Abort]:
    """A running attempt on the fake store, its fence, and the abort the fence sets."""
    fake = FakeStore(Reporter("wb", "http://bot"))
    fake.push(sha(1))
    claim = fake.claim_next(TOKEN)
    assert claim is not None
    fence = StoreFence(cast(Any, fake), claim.attempt_id, TOKEN)
    abort = Abort()
    fence.on_refused(lambda: abort.set(FENCE_REFUSED))
    return fake, fence, abort


def test_a_refused_check_sets_the_abort_once_and_not_before() -> None:
    fake, fence, abort = _claimed()
    calls: list[str] = []
    fence.on_refused(lambda: calls.append("stop"))
    fence.check()  # still owned: nothing stops
    assert not abort.is_set() and calls == []
    fake.lose(fence.attempt_id)
    with pytest.raises(AttemptFenced):
        fence.check()
    assert abort.is_set() and (abort.reason, abort.requeue) == (FENCE_REFUSED, False)
    with pytest.raises(AttemptFenced):
        fence.check()
    assert calls == ["stop"]  # once, however often it refuses afterwards


def test_a_callback_registered_after_the_refusal_runs_at_once() -> None:
    fake, fence, _ = _claimed()
    fake.lose(fence.attempt_id)
    with pytest.raises(AttemptFenced):
        fence.check()
    late = Abort()
    fence.on_refused(lambda: late.set(FENCE_REFUSED))
    assert late.is_set()


def test_a_refused_fenced_write_and_the_log_writers_beat_stop_the_attempt() -> None:
    fake, fence, abort = _claimed()
    fenced = FencedStore(cast(Any, fake), fence)
    fake.lose(fence.attempt_id)
    with pytest.raises(AttemptFenced):
        fenced.finish_attempt(fence.attempt_id, Result.PASSED, "ok")
    assert abort.is_set()

    fake, fence, abort = _claimed()
    fake.lose(fence.attempt_id)
    with pytest.raises(AttemptFenced):
        FencedStore(cast(Any, fake), fence).heartbeat(fence.attempt_id)
    assert abort.is_set()


def test_the_procrastinate_drains_beat_stops_the_attempt_it_finds_reaped() -> None:
    fake, fence, abort = _claimed()
    stopped = threading.Event()
    fence.on_refused(stopped.set)
    beat = _Beat(fence, 0.05)
    beat.start()
    try:
        assert not stopped.wait(0.3)  # beats while the attempt is owned
        fake.lose(fence.attempt_id)
        assert stopped.wait(5), "the beat met the refusal but nothing stopped the attempt"
    finally:
        beat.stop()
    assert abort.is_set() and abort.reason == FENCE_REFUSED


def test_once_lost_the_attempts_records_are_refused_and_its_log_dropped() -> None:
    fake, fence, _ = _claimed()
    fenced = FencedStore(cast(Any, fake), fence)
    pipeline = fenced.start_pipeline(fence.attempt_id, 0, "build")
    step = fenced.start_step(pipeline, 0, "main", "script", "long")
    fenced.append_log(fence.attempt_id, "before\n")
    fake.lose(fence.attempt_id)
    with pytest.raises(AttemptFenced):
        fence.check()
    with pytest.raises(AttemptFenced):
        fenced.finish_step(step, Result.ERRORED, None, FENCE_REFUSED)
    with pytest.raises(AttemptFenced):
        fenced.start_step(pipeline, 1, "main", "script", "next")
    with pytest.raises(AttemptFenced):
        fenced.finish_pipeline(pipeline, Result.ERRORED, FENCE_REFUSED)
    fenced.append_log(fence.attempt_id, "after\n")
    assert fake.log_text(fence.attempt_id) == "before\n"
    assert [(s.state, s.message) for p in fake.pipelines_of(fence.attempt_id) for s in p.steps] == [
        (Result.RUNNING, "")
    ]
