"""Upload progress (``bot.pushers.registry.progress``): sizes as people read them, a body that
reports what was read (at most every so often) and keeps its length, and the log line."""

from __future__ import annotations

import io

import pytest

from bot.logs import MemoryLog
from bot.pushers.registry.progress import ProgressReader, human_size, uploading


def test_progress_reader_reports_and_keeps_its_length() -> None:
    seen: list[int] = []
    reader = ProgressReader(io.BytesIO(b"x" * 1000), 1000, seen.append, every=0.0)
    assert len(reader) == 1000
    while reader.read(300):
        pass
    assert seen == [300, 600, 900, 1000]


def test_progress_reader_reports_no_more_often_than_asked() -> None:
    seen: list[int] = []
    reader = ProgressReader(io.BytesIO(b"x" * 1000), 1000, seen.append, every=3600.0)
    assert reader.read() == b"x" * 1000
    assert seen == []


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (0, "0 B"),
        (999, "999 B"),
        (1000, "1.0 KB"),
        (1_500_000, "1.5 MB"),
        (2_000_000_000, "2.0 GB"),
        (5_000_000_000_000, "5000.0 GB"),
    ],
)
def test_human_size(size: int, text: str) -> None:
    assert human_size(size) == text


def test_uploading_says_which_layer_and_how_far() -> None:
    log = MemoryLog()
    digest = "sha256:" + "ab" * 32
    uploading(log, digest, 3_000_000)(1_500_000)
    assert log.text == f"[wercker-bot] Layer {digest[:19]}… uploading: 1.5 MB / 3.0 MB\n"
