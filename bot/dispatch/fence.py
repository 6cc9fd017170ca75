"""Fencing: a worker that was paused or cut off, and whose attempt a reaper has ended, must
not move a tag or post a status for that attempt when it comes back.

- ``bot.dispatch.base.StoreFence``: the ``Fence`` of one claim, checked against the store
  (``DrainStore.fence``: ``UPDATE attempts SET heartbeat_at=… WHERE id=? AND
  state='running' AND worker=?``).
- ``fenced_services``: the ``Services`` one attempt runs with, where every write the outside
  world sees goes through the fence: status rows (``DrainStore.add_fenced``) and the
  attempt's end (``finish_attempt_fenced``) prove ownership in their own transaction;
  every image push (both pushers) checks the fence first, and again right before each tag
  moves (``Target.before_tag``); the log writer's heartbeat is the fence's. A refusal
  raises ``AttemptFenced`` and, from then on, every guarded write does; it also stops the
  attempt's running step (``StoreFence.on_refused``).

This module is the worker's side (it wraps the pushers and loads ``bot.build``); the web
process, which only kicks, never imports it.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from bot.dispatch.base import Fence
from bot.logs import Log
from bot.models import Result
from bot.pushers.base import EngineImagePusher, Pusher
from bot.pushers.model import ImageSpec, PushResult, Target
from bot.services import Services
from bot.store.base import Store
from bot.store.rows import QueuedBuild, StatusRow

if TYPE_CHECKING:
    from bot.engine import BoxSnapshot
    from bot.pushers.engine.model import BuiltImage, EngineImage

logger = logging.getLogger(__name__)


_RECORDS = frozenset(
    {
        "set_attempt_runner",
        "start_pipeline",
        "add_pipeline",
        "finish_pipeline",
        "start_step",
        "finish_step",
        "add_image",
    }
)
"""The attempt's own records (``AttemptRecords``) a stopped zombie would still write: its
aborted step's end, the steps it skips. Refused without a query once the fence is known
lost, so they cannot overwrite what the reaper settled."""


class FencedStore:
    """The store as one fenced attempt sees it. Writes about the attempt that the outside
    world sees are fenced; the attempt's pipeline, step and image records, and its log,
    are refused (the log dropped) once the fence is known lost (``_RECORDS``); everything
    else is the store's own (``__getattr__``)."""

    def __init__(self, store: Store, fence: Fence) -> None:
        self._store = store
        self._fence = fence

    def __getattr__(self, name: str) -> Any:
        found = getattr(self._store, name)
        if name not in _RECORDS:
            return found

        def guarded(*args: Any, **kwargs: Any) -> Any:
            self._known_lost()
            return found(*args, **kwargs)

        return guarded

    def append_log(self, attempt_id: int, text: str) -> None:
        """Dropped once the fence is known lost (the reaper wrote the log's last word;
        raising would only make the log writer retry); otherwise the store's."""
        if self._mine(attempt_id) and self._fence.lost:
            return
        self._store.append_log(attempt_id, text)

    def _mine(self, attempt_id: int) -> bool:
        return attempt_id == self._fence.attempt_id

    def _known_lost(self) -> None:
        if self._fence.lost:
            raise self._fence.refused()

    def heartbeat(self, attempt_id: int) -> None:
        """The log writer's beat: the fence's, so a refused attempt learns it while quiet."""
        if self._mine(attempt_id):
            self._fence.check()
        else:
            self._store.heartbeat(attempt_id)

    def add(self, rows: Sequence[StatusRow]) -> None:
        self._known_lost()
        fence = self._fence
        if not self._store.add_fenced(fence.attempt_id, fence.token, rows):
            raise fence.refused()

    def finish_attempt(self, attempt_id: int, state: Result, description: str) -> None:
        if not self._mine(attempt_id):
            self._store.finish_attempt(attempt_id, state, description)
            return
        self._known_lost()
        if not self._store.finish_attempt_fenced(attempt_id, self._fence.token, state, description):
            raise self._fence.refused()

    def error_open_pipelines(self, attempt_id: int, description: str) -> None:
        if self._mine(attempt_id):
            self._known_lost()
        self._store.error_open_pipelines(attempt_id, description)

    def supersede(self, repo: str, queued: Sequence[QueuedBuild], by_sha: str) -> list[int]:
        self._fence.check()
        return self._store.supersede(repo, queued, by_sha)

    def restart_attempt(
        self, attempt_id: int, description: str, worker: str | None = None
    ) -> int | None:
        """The store's, proving this worker still holds the attempt (its token): a reaped
        attempt is not restarted (None), its reaper already settled it."""
        if self._mine(attempt_id):
            self._known_lost()
            worker = worker or self._fence.token
        return self._store.restart_attempt(attempt_id, description, worker)


def fenced_target(target: Target, fence: Fence) -> Target:
    """``target`` whose ``before_tag`` checks ``fence`` (after any hook it had), so the
    pusher proves ownership right before each tag moves: a worker paused during a long
    blob upload and reaped meanwhile raises ``AttemptFenced`` instead of moving the tag."""
    earlier = target.before_tag

    def before_tag() -> None:
        if earlier is not None:
            earlier()
        fence.check()

    return dataclasses.replace(target, before_tag=before_tag)


class FencedPusher:
    """A daemonless pusher that checks the fence before each push (nothing is uploaded
    for a reaped attempt) and again right before each tag's manifest PUT
    (``fenced_target``)."""

    def __init__(self, inner: Pusher[ImageSpec], fence: Fence) -> None:
        self._inner = inner
        self._fence = fence

    def push(self, source: ImageSpec, target: Target, log: Log) -> PushResult:
        self._fence.check()
        return self._inner.push(source, fenced_target(target, self._fence), log)

    def sweep(self) -> list[Path]:
        return self._inner.sweep()


class FencedEnginePusher:
    """The engine pusher, checking the fence before each push and again before each tag's
    ``docker push`` (``fenced_target``; the engine uploads and stores the manifest in one
    call, so that is as late as the check can come). Builds are not fenced: they stay on
    the box's engine."""

    def __init__(self, inner: EngineImagePusher, fence: Fence) -> None:
        self._inner = inner
        self._fence = fence

    def push(self, source: EngineImage, target: Target, log: Log) -> PushResult:
        self._fence.check()
        return self._inner.push(source, fenced_target(target, self._fence), log)

    def sweep(self) -> list[Path]:
        return self._inner.sweep()

    def build(
        self, box: BoxSnapshot, context_dir: Path, options: dict[str, Any], name: str, log: Log
    ) -> BuiltImage:
        return self._inner.build(box, context_dir, options, name, log)


def fenced_services(services: Services, fence: Fence) -> Services:
    """``services`` for one attempt under ``fence``: the same objects, but the store and the
    pushers fenced (see the module docstring)."""
    return dataclasses.replace(
        services,
        store=cast(Store, FencedStore(services.store, fence)),
        pusher=FencedPusher(services.pusher, fence),
        engine_pusher=FencedEnginePusher(services.engine_pusher, fence),
    )
