"""``bot.logarchive.S3LogArchive`` against moto's S3 (``moto_server`` on loopback) and a real
store: a copy reads back as the stored log, a large log goes up in bounded memory, and a
down or refusing S3 is logged (without credentials) and never reaches the caller."""

from __future__ import annotations

import hashlib
import itertools
import logging
import time
import tracemalloc
from pathlib import Path
from typing import Any

import boto3
import pytest

from bot.errors import StoreUnavailable
from bot.logarchive import (
    PART_BYTES,
    AttemptRef,
    S3LogArchive,
    archive_finished,
    archive_pending,
    open_archive,
)
from bot.models import Result
from bot.settings_store import LogArchiveSettings
from bot.store.sql import SqlStore
from tests.harness.builds import claimed_attempt, open_store
from tests.harness.registry import MotoServer, free_port

KEY_ID = "AKIAWBLOGSKEYID0001"
SECRET = "wb-logs-secret-value-0001"
_buckets = itertools.count()


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Credentials for boto3's chain from the environment only (moto takes any)."""
    for name in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))


@pytest.fixture
def store(tmp_path: Path) -> SqlStore:
    return open_store(tmp_path / "db.sqlite3")


def settings(endpoint: str, bucket: str) -> LogArchiveSettings:
    return LogArchiveSettings(
        archive="s3", bucket=bucket, prefix="ci/logs/", endpoint_url=endpoint, region="us-east-1"
    )


def s3(moto: MotoServer) -> Any:
    return boto3.client("s3", endpoint_url=moto.endpoint_url, region_name="us-east-1")


def new_bucket(moto: MotoServer) -> str:
    name = f"wb-logs-{next(_buckets)}-{int(time.time() * 1000)}"
    s3(moto).create_bucket(Bucket=name)
    return name


def finished_attempt(store: SqlStore, text: str = "", repo: str = "acme/app") -> AttemptRef:
    attempt = claimed_attempt(store, repo=repo)
    if text:
        store.append_log(attempt, text)
    store.finish_attempt(attempt, Result.PASSED, "ok")
    return AttemptRef(attempt, repo, store.list_builds(1)[0].id, 1)


def digest(chunks: Any) -> str:
    h = hashlib.sha256()
    for chunk in chunks:
        h.update(chunk)
    return h.hexdigest()


def test_a_copy_reads_back_as_the_stored_log(
    aws_env: None, moto_ecr: MotoServer, store: SqlStore
) -> None:
    bucket = new_bucket(moto_ecr)
    text = "".join(f"step {i}: ✓ ok\n" for i in range(5000))
    attempt = finished_attempt(store, text)
    archive = open_archive(settings(moto_ecr.endpoint_url, bucket))
    assert isinstance(archive, S3LogArchive)

    key = archive_finished(store, archive, attempt)

    assert key == f"ci/logs/acme/app/{attempt.build_id}/1.log"
    assert (
        b"".join(archive.read(key)).decode() == text == "".join(store.iter_log(attempt.attempt_id))
    )
    head = s3(moto_ecr).head_object(Bucket=bucket, Key=key)
    assert head["ContentType"].startswith("text/plain")
    assert archive.last_row(key) == store.log_tail(attempt.attempt_id).last_id
    assert archive.last_row("ci/logs/none.log") is None
    with pytest.raises(FileNotFoundError):
        next(archive.read("ci/logs/none.log"))


def test_a_large_log_goes_up_in_parts_with_bounded_memory(
    aws_env: None, moto_ecr: MotoServer, store: SqlStore
) -> None:
    bucket = new_bucket(moto_ecr)
    attempt_id = claimed_attempt(store)
    line = "".join(f"{i:08d} build output that goes on and on\n" for i in range(25_000))
    while sum(len(p) for p in store.iter_log(attempt_id)) < 20 * 1024 * 1024:
        store.append_log(attempt_id, line)  # ≈ 1 MB each, stored as bounded rows
    store.finish_attempt(attempt_id, Result.PASSED, "ok")
    attempt = AttemptRef(attempt_id, "acme/app", store.list_builds(1)[0].id, 1)
    size = sum(len(p.encode()) for p in store.iter_log(attempt_id))
    archive = S3LogArchive(settings(moto_ecr.endpoint_url, bucket))

    tracemalloc.start()
    try:
        key = archive_finished(store, archive, attempt)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert key is not None
    # about one part in memory (measured ≈ 7 MB for 21 MB), whatever the log's size
    assert size >= 20 * 1024 * 1024 and peak < 2 * PART_BYTES < size / 2, (size, peak)
    assert s3(moto_ecr).head_object(Bucket=bucket, Key=key)["ContentLength"] == size
    uploads = s3(moto_ecr).list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    assert uploads == []  # completed, nothing left behind
    stored = digest(p.encode() for p in store.iter_log(attempt_id))
    assert digest(archive.read(key)) == stored
    assert size > 3 * PART_BYTES  # it really was a multipart upload


def test_s3_refusing_connections_is_logged_and_never_raised(
    aws_env: None, store: SqlStore, caplog: pytest.LogCaptureFixture
) -> None:
    port = free_port()  # nothing listens there: connections are refused
    attempt = finished_attempt(store, "the build log\n")
    archive = S3LogArchive(settings(f"http://{KEY_ID}:{SECRET}@127.0.0.1:{port}", "logs"))

    started = time.monotonic()
    with caplog.at_level(logging.INFO):
        assert archive_finished(store, archive, attempt) is None
        assert archive_pending(store, archive, settle=0) == 0

    assert time.monotonic() - started < 30  # bounded retries, not minutes
    assert f"cannot reach http://127.0.0.1:{port} bucket logs" in caplog.text
    assert "stays in the store" in caplog.text
    assert SECRET not in caplog.text and KEY_ID not in caplog.text
    assert "".join(store.iter_log(attempt.attempt_id)) == "the build log\n"


def test_a_missing_bucket_is_retried_by_the_sweep_once_it_exists(
    aws_env: None, moto_ecr: MotoServer, store: SqlStore, caplog: pytest.LogCaptureFixture
) -> None:
    bucket = f"wb-later-{int(time.time() * 1000)}"
    attempt = finished_attempt(store, "a log for later\n", repo="acme/web")
    archive = S3LogArchive(settings(moto_ecr.endpoint_url, bucket))

    with caplog.at_level(logging.WARNING, logger="bot.logarchive"):
        assert archive_finished(store, archive, attempt) is None
    assert "S3 answered NoSuchBucket (HTTP 404)" in caplog.text
    assert SECRET not in caplog.text and KEY_ID not in caplog.text

    s3(moto_ecr).create_bucket(Bucket=bucket)
    assert archive_pending(store, archive, settle=0) == 1
    keys = [o["Key"] for o in s3(moto_ecr).list_objects_v2(Bucket=bucket)["Contents"]]
    assert keys == [f"ci/logs/acme/web/{attempt.build_id}/1.log"]
    assert all(SECRET not in k and KEY_ID not in k for k in keys)
    assert b"".join(archive.read(keys[0])).decode() == "".join(store.iter_log(attempt.attempt_id))
    assert archive_pending(store, archive, settle=0) == 0  # whole: not copied again


def test_an_upload_that_fails_midway_leaves_no_object_and_no_parts(
    aws_env: None, moto_ecr: MotoServer
) -> None:
    bucket = new_bucket(moto_ecr)
    archive = S3LogArchive(settings(moto_ecr.endpoint_url, bucket))

    def failing() -> Any:
        yield b"x" * (PART_BYTES + 1)  # one whole part goes up
        raise StoreUnavailable("database or disk is full")

    with pytest.raises(StoreUnavailable):
        archive.put("ci/logs/broken.log", failing(), 7)

    assert archive.last_row("ci/logs/broken.log") is None
    assert s3(moto_ecr).list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
