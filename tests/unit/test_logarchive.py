"""``bot.logarchive``: keys, copying a finished log from a real store to an archive (the
in-memory fake), failures that never reach the caller, and the retry sweep."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError

from bot.logarchive import (
    AttemptRef,
    S3LogArchive,
    archive_finished,
    archive_pending,
    open_archive,
)
from bot.models import Result
from bot.settings_store import LogArchiveSettings
from bot.store.base import LOG_PAGE_BYTES, LOG_ROW_CHARS
from bot.store.sql import SqlStore
from tests.fakes.logarchive import FakeLogArchive
from tests.harness.builds import claimed_attempt, new_push, open_store


@pytest.fixture
def store(tmp_path: Path) -> SqlStore:
    return open_store(tmp_path / "db.sqlite3")


def ref(store: SqlStore, attempt_id: int, repo: str = "acme/app") -> AttemptRef:
    """The ``AttemptRef`` of ``attempt_id``, as the worker's claim would give it."""
    for build in store.list_builds(100):
        detail = store.build_detail(build.id)
        assert detail is not None
        for attempt in detail.attempts:
            if attempt.id == attempt_id:
                return AttemptRef(attempt_id, detail.repo, detail.id, attempt.number)
    raise AssertionError(f"no attempt {attempt_id}")


def finished(store: SqlStore, text: str, **push: object) -> int:
    """A claimed attempt with ``text`` as its log, then finished."""
    attempt = claimed_attempt(store, **push)
    store.append_log(attempt, text)
    store.finish_attempt(attempt, Result.PASSED, "ok")
    return attempt


def whole_log(store: SqlStore, attempt: int) -> str:
    return "".join(store.iter_log(attempt))


def test_a_key_holds_the_repository_build_and_attempt_only() -> None:
    assert AttemptRef(7, "acme/app", 12, 3).name == "acme/app/12/3.log"
    odd = AttemptRef(7, "../we ird/a:b@c", 1, 1).name
    assert odd == "_/we_ird/a_b_c/1/1.log"
    settings = LogArchiveSettings(archive="s3", bucket="b", prefix="logs", region="us-east-1")
    assert S3LogArchive(settings).key_for(AttemptRef(7, "acme/app", 12, 3)) == (
        "logs/acme/app/12/3.log"
    )
    bare = LogArchiveSettings(archive="s3", bucket="b", prefix="", region="us-east-1")
    assert S3LogArchive(bare).key_for(AttemptRef(7, "acme/app", 12, 3)) == "acme/app/12/3.log"


def test_open_archive_follows_the_settings() -> None:
    assert open_archive(LogArchiveSettings()) is None
    s3 = open_archive(LogArchiveSettings(archive="s3", bucket="b", region="us-east-1"))
    assert isinstance(s3, S3LogArchive) and s3.bucket == "b"


def test_a_finished_log_is_copied_as_the_pages_read_it_streamed(store: SqlStore) -> None:
    lines = [f"line {i} — ünïcode ✓\n" for i in range(40_000)]  # ≈ 1 MB over many pages
    attempt = claimed_attempt(store)
    for i in range(0, len(lines), 500):
        store.append_log(attempt, "".join(lines[i : i + 500]))
    store.finish_attempt(attempt, Result.PASSED, "ok")
    archive = FakeLogArchive()

    key = archive_finished(store, archive, ref(store, attempt))

    assert key == "logs/acme/app/1/1.log"
    assert archive.text(key) == "".join(lines) == whole_log(store, attempt)
    assert archive.last_row(key) == store.log_tail(attempt).last_id
    # streamed a page at a time, never joined first
    assert 0 < archive.largest_chunk <= LOG_PAGE_BYTES + 4 * LOG_ROW_CHARS
    assert archive.puts == 1


def test_nothing_is_archived_without_an_archive_or_a_log(store: SqlStore) -> None:
    empty = claimed_attempt(store)
    store.finish_attempt(empty, Result.PASSED, "ok")
    archive = FakeLogArchive()
    assert archive_finished(store, archive, ref(store, empty)) is None
    assert archive.objects == {}
    logged = finished(store, "hello\n", delivery_id="d2", sha="b" * 40)
    assert archive_finished(store, None, ref(store, logged)) is None


def test_archive_down_is_logged_and_the_log_stays_readable(
    store: SqlStore, caplog: pytest.LogCaptureFixture
) -> None:
    attempt = finished(store, "step output\n")
    archive = FakeLogArchive(down=True)

    with caplog.at_level(logging.WARNING, logger="bot.logarchive"):
        assert archive_finished(store, archive, ref(store, attempt)) is None

    assert "the fake archive is down" in caplog.text and "stays in the store" in caplog.text
    assert whole_log(store, attempt) == "step output\n"
    archive.down = False
    assert archive_pending(store, archive, settle=0) == 1  # the sweep retries it
    assert archive.text("logs/acme/app/1/1.log") == "step output\n"


def test_rows_written_during_the_upload_wait_for_the_sweep(store: SqlStore) -> None:
    attempt = claimed_attempt(store)
    store.append_log(attempt, "a" * (LOG_PAGE_BYTES + 10))  # two pages at least
    archive = FakeLogArchive(during_put=lambda: store.append_log(attempt, "late line\n"))
    store.finish_attempt(attempt, Result.PASSED, "ok")

    key = archive_finished(store, archive, ref(store, attempt))

    assert key is not None
    assert archive.text(key) == "a" * (LOG_PAGE_BYTES + 10)  # the snapshot, no more
    assert archive.last_row(key) != store.log_tail(attempt).last_id  # marked as short
    archive.during_put = None
    assert archive_pending(store, archive, settle=0) == 1
    assert archive.text(key) == whole_log(store, attempt)
    assert archive.text(key).endswith("late line\n")
    assert archive_pending(store, archive, settle=0) == 0  # whole now: left alone


def test_the_sweep_copies_settled_finished_attempts_without_a_whole_copy(
    store: SqlStore,
) -> None:
    archive = FakeLogArchive()
    copied = finished(store, "copied\n", delivery_id="d1", sha="1" * 40, branch="b1")
    assert archive_finished(store, archive, ref(store, copied)) is not None
    missing = finished(store, "missing\n", delivery_id="d2", sha="2" * 40, branch="b2")
    # a re-run: attempt 2 of the same build; both attempts' logs are copied
    rerun_first = finished(store, "first try\n", delivery_id="d3", sha="3" * 40, branch="b3")
    store.record_push(new_push(delivery_id="d3", sha="3" * 40, branch="b3"))
    claim = store.claim_next("w")
    assert claim is not None and claim.attempt_number == 2
    store.append_log(claim.attempt_id, "second try\n")
    store.finish_attempt(claim.attempt_id, Result.FAILED, "no")
    running = claimed_attempt(store, delivery_id="d4", sha="4" * 40, branch="b4")
    store.append_log(running, "still running\n")
    settled_at = time.time()
    time.sleep(0.02)
    recent = finished(store, "recent\n", delivery_id="d5", sha="5" * 40, branch="b5")
    puts_before = archive.puts

    assert archive_pending(store, archive, settle=0, now=settled_at) == 3

    assert archive.puts == puts_before + 3  # the whole copy was not uploaded again
    names = {ref(store, a).name for a in (copied, missing, rerun_first, claim.attempt_id)}
    assert {f"logs/{n}" for n in names} == set(archive.objects)
    assert archive.text(archive.key_for(ref(store, rerun_first))) == "first try\n"
    assert archive.text(archive.key_for(ref(store, claim.attempt_id))) == "second try\n"
    assert archive.key_for(ref(store, running)) not in archive.objects
    assert archive.key_for(ref(store, recent)) not in archive.objects
    assert archive_pending(store, archive, settle=0) == 1  # recent, once settled


def test_the_sweep_stops_at_the_first_failure_without_raising(
    store: SqlStore, caplog: pytest.LogCaptureFixture
) -> None:
    for n in range(3):
        finished(store, f"log {n}\n", delivery_id=f"d{n}", sha=f"{n}" * 40, branch=f"b{n}")
    archive = FakeLogArchive(down=True)
    with caplog.at_level(logging.WARNING, logger="bot.logarchive"):
        assert archive_pending(store, archive, settle=0) == 0
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "the fake archive is down" in warnings[0].getMessage()


def test_failure_reasons_name_no_credential_nor_userinfo() -> None:
    settings = LogArchiveSettings(
        archive="s3",
        bucket="logs-bucket",
        endpoint_url="http://keyid:pw-s3cret@127.0.0.1:9/path?token=tok-s3cret",
        region="us-east-1",
    )
    archive = S3LogArchive(settings)
    refused = EndpointConnectionError(endpoint_url=settings.endpoint_url)
    denied = ClientError(
        {
            "Error": {"Code": "AccessDenied", "Message": "key AKIA-s3cret denied"},
            "ResponseMetadata": {"HTTPStatusCode": 403},
        },
        "PutObject",
    )
    reasons = [
        archive._reason(refused, "storing k"),
        archive._reason(denied, "storing k"),
        archive._reason(NoCredentialsError(), "storing k"),
    ]
    assert reasons[0] == "storing k: cannot reach http://127.0.0.1:9 bucket logs-bucket " + (
        "(EndpointConnectionError)"
    )
    assert "AccessDenied (HTTP 403)" in reasons[1]
    assert "no usable AWS credentials" in reasons[2]
    for reason in reasons:
        assert "s3cret" not in reason and "keyid" not in reason
