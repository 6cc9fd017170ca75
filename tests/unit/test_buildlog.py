import time
from pathlib import Path

import pytest

from bot import buildlog
from bot.buildlog import StoreLog
from bot.errors import StoreUnavailable
from bot.masking import Masker
from bot.store.sql import SqlStore
from tests.harness.builds import claimed_attempt, open_store


def test_a_failing_store_loses_no_log_text(tmp_path: Path) -> None:
    store = open_store(tmp_path / "db")
    attempt_id = claimed_attempt(store)
    real = store.append_log
    failures = {"left": 3}

    def flaky(attempt_id: int, text: str) -> None:
        if failures["left"]:
            failures["left"] -= 1
            raise RuntimeError("database is locked")
        real(attempt_id, text)

    store.append_log = flaky  # type: ignore[method-assign]
    log = StoreLog(store, attempt_id, Masker())
    log.output("first\n")
    time.sleep(2.5)  # several flush rounds fail, the thread survives
    log.output("second\n")
    log.close()
    text, _ = store.log_text(attempt_id)
    assert text == "first\nsecond\n"


def claimed(store: SqlStore) -> int:
    return claimed_attempt(store)


def whole_log(store: SqlStore, attempt_id: int) -> str:
    return "".join(store.iter_log(attempt_id))


def test_output_past_the_limit_is_cut_once_and_bot_lines_use_the_reserve(tmp_path: Path) -> None:
    store = open_store(tmp_path / "db")
    attempt = claimed(store)
    log = StoreLog(store, attempt, Masker(), limit=1000, reserve=8192)
    log.output("a" * 600 + "\n")
    log.output("b" * 600 + "\n")  # crosses the limit: 399 b's kept, then the cut line
    log.output("c" * 5000 + "\n")
    log.info("step passed")
    log.close()
    text = whole_log(store, attempt)
    assert text.startswith("a" * 600 + "\n" + "b" * 399 + "\n[wercker-bot] log cut at 1000 bytes")
    assert "ccc" not in text
    assert log.cut == 202 + 5001
    assert text.endswith(
        "[wercker-bot] step passed\n"
        "[wercker-bot] log cut at 1000 bytes (log_limit_mb): 5203 more bytes of step output "
        "were not stored\n"
    )


def test_a_cut_never_splits_a_character(tmp_path: Path) -> None:
    store = open_store(tmp_path / "db")
    attempt = claimed(store)
    log = StoreLog(store, attempt, Masker(), limit=5, reserve=8192)
    log.output("ééé\n")  # 7 bytes; 5 fit, which is 2½ characters
    log.close()
    assert whole_log(store, attempt).startswith("éé\n[wercker-bot] log cut at 5 bytes")


def test_bot_lines_past_the_reserve_are_counted_not_stored(tmp_path: Path) -> None:
    store = open_store(tmp_path / "db")
    attempt = claimed(store)
    log = StoreLog(store, attempt, Masker(), limit=100, reserve=4096)
    for i in range(200):
        log.info(f"progress {i:04d}")
    log.close()
    text = whole_log(store, attempt)
    assert len(text.encode()) <= 100 + 4096
    assert "nor " in text and "bytes of bot lines" in text.splitlines()[-1]


def test_a_slow_store_slows_the_producer_down_instead_of_losing_text(tmp_path: Path) -> None:
    store = open_store(tmp_path / "db")
    attempt = claimed(store)
    real = store.append_log

    def slow(attempt_id: int, text: str) -> None:
        time.sleep(0.05)
        real(attempt_id, text)

    store.append_log = slow  # type: ignore[method-assign]
    log = StoreLog(store, attempt, Masker(), buffer_limit=64 * 1024)
    chunk = "x" * 1023 + "\n"
    for _ in range(2048):  # 2 MB through a 64 KB buffer
        log.output(chunk)
        assert log.buffered <= 64 * 1024
    log.close()
    assert not log.incomplete and log.peak_buffered <= 64 * 1024
    assert whole_log(store, attempt) == chunk * 2048


def test_close_never_raises_and_counts_what_a_dead_store_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(buildlog, "CLOSE_SECONDS", 0.5)
    store = open_store(tmp_path / "db")
    attempt = claimed(store)

    def dead(attempt_id: int, text: str) -> None:
        raise StoreUnavailable("disk I/O error")

    store.append_log = dead  # type: ignore[method-assign]
    log = StoreLog(store, attempt, Masker())
    log.output("never stored\n")
    with pytest.raises(StoreUnavailable, match="disk I/O error"):
        log.flush()
    log.close()
    log.close()
    assert log.dropped == len("never stored\n") and log.incomplete


def test_a_split_secret_never_reaches_the_store(tmp_path: Path) -> None:
    store = open_store(tmp_path / "db")
    attempt = claimed(store)
    log = StoreLog(store, attempt, Masker(["s3cr3t-value"]))
    log.output("pw=s3cr3t")
    time.sleep(1.2)  # the writer stores what it has meanwhile
    log.output("-value\n")
    log.close()
    assert whole_log(store, attempt) == "pw=****\n"
