"""The tag fence on a real registry (distribution 2.8): a worker paused during its blob
uploads and reaped meanwhile uploads its blobs, but moves no tag. The daemonless pusher runs
behind ``FencedPusher`` with a real ``StoreFence`` on a SQLite store; the reaper
(``reap_lost``) ends the attempt between the blob uploads and the manifest PUT."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import requests
from sqlalchemy import update

from bot.dispatch.base import AttemptFenced, StoreFence
from bot.dispatch.fence import FencedPusher
from bot.logs import MemoryLog
from bot.pushers.credentials import RegistryCredentials
from bot.pushers.daemonless import DaemonlessPusher
from bot.pushers.model import ImageConfig, ImageSpec, LayerDir, Target
from bot.pushers.registry.client import RetryPolicy
from bot.pushers.registry.image import DOCKER_MANIFEST
from bot.store.schema import attempts
from bot.store.sql import SqlStore
from tests.harness.builds import new_push, open_store
from tests.harness.registry import RegistryServer

FAST = RetryPolicy(attempts=3, backoff=0.05, factor=2)
KEY = "acme/app@main"
TOKEN = "host:1:t:job7"


class ReapedWhileUploading:
    """The fence of a worker that was paused after its pre-push check: before the next
    check the reaper has ended its attempt. ``log_at_refusal`` is the push log as it was
    when the refused check came (what had been uploaded by then)."""

    def __init__(self, store: SqlStore, fence: StoreFence, log: MemoryLog) -> None:
        self._store = store
        self._fence = fence
        self._log = log
        self.checks = 0
        self.log_at_refusal = ""

    @property
    def attempt_id(self) -> int:
        return self._fence.attempt_id

    @property
    def token(self) -> str:
        return self._fence.token

    @property
    def lost(self) -> bool:
        return self._fence.lost

    def refused(self) -> AttemptFenced:
        return self._fence.refused()

    def check(self) -> None:
        self.checks += 1
        if self.checks == 2:
            self.log_at_refusal = self._log.text
            with self._store.tx() as conn:
                conn.execute(
                    update(attempts)
                    .where(attempts.c.id == self.attempt_id)
                    .values(heartbeat_at=time.time() - 99)
                )
            assert [r.attempt_id for r in self._store.reap_lost(lost_after=30)] == [self.attempt_id]
        self._fence.check()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlStore]:
    store = open_store(tmp_path / "db.sqlite3")
    yield store
    store.close()


def _image(tmp_path: Path, text: str) -> ImageSpec:
    src = tmp_path / f"src-{text}"
    src.mkdir()
    (src / "hello.txt").write_text(text)
    return ImageSpec([LayerDir(src, "/")], ImageConfig(cmd=["/x"], labels={"v": text}))


def _manifest_digest(server: RegistryServer, repository: str, tag: str) -> str | None:
    resp = requests.head(
        f"{server.url}/v2/{repository}/manifests/{tag}",
        headers={"Accept": DOCKER_MANIFEST},
        timeout=10,
    )
    if resp.status_code == 404:
        return None
    resp.raise_for_status()
    return resp.headers["Docker-Content-Digest"]


def test_a_worker_reaped_during_its_uploads_moves_no_tag(
    registry_plain: RegistryServer, store: SqlStore, tmp_path: Path
) -> None:
    pusher = DaemonlessPusher(
        registry_plain.registries,
        tmp_path / "cache",
        credentials=RegistryCredentials(registry_plain.registries),
        retry=FAST,
    )
    target = Target(registry_plain.host, "acme/fenced", ("v1", "v2"), "http")
    old = pusher.push(_image(tmp_path, "old"), replace(target, tags=("v1",)), MemoryLog())
    store.record_push(new_push(sha="a" * 40))
    claim = store.claim_key(KEY, TOKEN)
    assert claim is not None
    log = MemoryLog()
    fence = ReapedWhileUploading(store, StoreFence(store, claim.attempt_id, TOKEN), log)

    new = _image(tmp_path, "new")
    with pytest.raises(AttemptFenced):
        FencedPusher(pusher, fence).push(new, target, log)

    # The refusal came after the blobs were uploaded, right before the first tag's PUT.
    assert fence.checks == 2
    assert "uploaded" in fence.log_at_refusal and "stored as" not in fence.log_at_refusal
    assert "stored as" not in log.text
    assert _manifest_digest(registry_plain, "acme/fenced", "v1") == old.digest
    assert _manifest_digest(registry_plain, "acme/fenced", "v2") is None
    assert fence.lost
    # The blobs are there: a live worker's push of the same image uploads nothing.
    again = MemoryLog()
    pushed = pusher.push(new, target, again)
    assert "uploaded" not in again.text and "already exists" in again.text
    assert _manifest_digest(registry_plain, "acme/fenced", "v1") == pushed.digest != old.digest
