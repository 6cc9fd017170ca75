"""``steps/library/s3sync/sync.py``, the s3sync step's sync, in-process against moto's S3
(``mock_aws``): what is uploaded, skipped, deleted and excluded, the flags, and errors."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest
from moto import mock_aws

from bot.stepsources.resolve import LIBRARY


def load_sync() -> ModuleType:
    spec = importlib.util.spec_from_file_location("s3sync_sync", LIBRARY / "s3sync" / "sync.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


sync = load_sync()


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        client = boto3.client("s3")
        client.create_bucket(Bucket="bkt")
        yield client


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "sub").mkdir()
    (tmp_path / "index.html").write_text("<p>")
    (tmp_path / "sub" / "data.json").write_text("{}")
    (tmp_path / "notes.tmp").write_text("x")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def keys(s3: Any) -> set[str]:
    return {o["Key"] for o in s3.list_objects_v2(Bucket="bkt").get("Contents", [])}


def test_split_url() -> None:
    assert sync.split_url("s3://bucket") == ("bucket", "")
    assert sync.split_url("s3://bucket/a/b") == ("bucket", "a/b/")
    assert sync.split_url("s3://bucket/a/") == ("bucket", "a/")
    for bad in ("bucket/a", "https://bucket", "s3://"):
        with pytest.raises(ValueError, match="is not an s3://bucket/prefix/ URL"):
            sync.split_url(bad)


def test_sync_uploads_skips_unchanged_and_deletes(
    s3: Any, site: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    s3.put_object(Bucket="bkt", Key="p/gone.txt", Body=b"x")
    s3.put_object(Bucket="bkt", Key="other/keep.txt", Body=b"x")
    argv = ["--acl-public", "--delete-removed", "--exclude", "*.tmp", "./", "s3://bkt/p"]
    assert sync.main(argv) == 0
    assert keys(s3) == {"p/index.html", "p/sub/data.json", "other/keep.txt"}
    assert s3.head_object(Bucket="bkt", Key="p/sub/data.json")["ContentType"] == "application/json"
    out = capsys.readouterr().out
    assert "delete: s3://bkt/p/gone.txt" in out
    assert "Uploaded 2 file(s), deleted 1." in out
    (site / "index.html").write_text("<p>changed")
    assert sync.main(argv) == 0
    assert "Uploaded 1 file(s), deleted 0." in capsys.readouterr().out


def test_dry_run_changes_nothing(s3: Any, site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    s3.put_object(Bucket="bkt", Key="gone.txt", Body=b"x")
    assert sync.main(["--dry-run", "--delete-removed", "./", "s3://bkt"]) == 0
    assert keys(s3) == {"gone.txt"}
    assert "upload: index.html -> s3://bkt/index.html" in capsys.readouterr().out


def test_unknown_flags_warn_and_errors_are_one_line(
    s3: Any, site: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert sync.main(["--no-mime-magic", "./", "s3://bkt/"]) == 0
    assert "option --no-mime-magic is not supported; ignored" in capsys.readouterr().err
    assert sync.main(["./", "s3://missing/"]) == 1
    assert "S3 refused: NoSuchBucket" in capsys.readouterr().err
    assert sync.main(["./", "bucket"]) == 1
    assert "is not an s3://bucket/prefix/ URL" in capsys.readouterr().err


def test_links_are_not_followed(
    s3: Any, site: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    outside = tmp_path_factory.mktemp("outside") / "secret.txt"
    outside.write_text("secret")
    os.symlink(outside, site / "link.txt")
    assert sync.main(["./", "s3://bkt/"]) == 0
    assert "link.txt" not in keys(s3)
