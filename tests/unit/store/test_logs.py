"""The store's log rows and reads (bounded pages, tail, stream) and its write errors."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, func, select

from bot.errors import StoreUnavailable
from bot.store.base import LOG_ROW_CHARS, READ_ROW_CHARS
from bot.store.schema import logs
from bot.store.sql import SqlStore
from tests.harness.builds import claimed_attempt, open_store


def numbered(count: int) -> list[str]:
    return [f"line {i:06d}\n" for i in range(count)]


def test_append_log_stores_bounded_rows(store: SqlStore) -> None:
    attempt = claimed_attempt(store)
    store.append_log(attempt, "x" * (LOG_ROW_CHARS * 2 + 5))
    with store.engine.connect() as conn:
        sizes = [
            r.n
            for r in conn.execute(
                select(func.length(logs.c.text).label("n")).order_by(logs.c.id)
            ).all()
        ]
    assert sizes == [LOG_ROW_CHARS, LOG_ROW_CHARS, 5]


def test_pages_are_bounded_and_their_cursors_add_up_to_the_log(store: SqlStore) -> None:
    attempt = claimed_attempt(store)
    lines = numbered(3000)
    for i in range(0, len(lines), 10):
        store.append_log(attempt, "".join(lines[i : i + 10]))
    got, after, pages = [], 0, 0
    while True:
        page = store.log_page(attempt, after, max_bytes=4096)
        assert len(page.text.encode()) <= 4096
        got.append(page.text)
        after, pages = page.next_id, pages + 1
        if not page.more:
            break
    assert "".join(got) == "".join(lines) and pages >= 36000 // 4096
    assert store.log_page(attempt, after, 4096).text == ""  # nothing new yet
    store.append_log(attempt, "new\n")
    assert store.log_page(attempt, after, 4096).text == "new\n"


def test_a_page_holds_at_least_one_row(store: SqlStore) -> None:
    attempt = claimed_attempt(store)
    store.append_log(attempt, "y" * 3000)
    page = store.log_page(attempt, 0, max_bytes=10)
    assert page.text == "y" * 3000 and not page.more


def test_log_text_is_one_page_not_the_whole_log(store: SqlStore) -> None:
    attempt = claimed_attempt(store)
    for _ in range(40):
        store.append_log(attempt, "z" * 10_000)
    text, cursor = store.log_text(attempt)
    assert 0 < len(text) <= 256 * 1024 and cursor > 0


def test_tail_is_the_end_of_the_log_from_a_line_start(store: SqlStore) -> None:
    attempt = claimed_attempt(store)
    lines = numbered(2000)  # 12 bytes each
    store.append_log(attempt, "".join(lines))
    tail = store.log_tail(attempt, max_bytes=1000)
    assert not tail.complete and tail.text.endswith(lines[-1])
    assert len(tail.text) <= 1000 and tail.text.startswith("line ")
    assert tail.text == "".join(lines[-(len(tail.text) // 12) :])
    whole = store.log_tail(attempt, max_bytes=1 << 20)
    assert whole.complete and whole.text == "".join(lines)
    assert whole.last_id == tail.last_id == store.log_page(attempt, 0, 1 << 20).next_id
    empty = store.log_tail(attempt + 1, 1000)  # no rows (yet)
    assert empty.text == "" and empty.complete and empty.last_id == 0


def test_iter_log_streams_the_whole_log_in_pages(store: SqlStore) -> None:
    attempt = claimed_attempt(store)
    lines = numbered(5000)
    for i in range(0, len(lines), 100):
        store.append_log(attempt, "".join(lines[i : i + 100]))
    pages = list(store.iter_log(attempt, page_bytes=8192))
    assert "".join(pages) == "".join(lines)
    assert max(len(p) for p in pages) <= 8192 and len(pages) > 5


def test_a_huge_row_from_before_the_bound_is_cut_when_read(store: SqlStore) -> None:
    attempt = claimed_attempt(store)
    with store.tx() as conn:  # as the old append_log stored a whole batch in one row
        conn.execute(logs.insert().values(attempt_id=attempt, text="q" * 200_000, created_at=0))
    page = store.log_page(attempt, 0)
    assert page.text.startswith("q" * READ_ROW_CHARS) and "stored before logs" in page.text
    assert len(page.text) < READ_ROW_CHARS + 200


def test_log_attempt_id(store: SqlStore) -> None:
    attempt = claimed_attempt(store)
    assert store.log_attempt_id(1, 1) == attempt
    assert store.log_attempt_id(1, 2) is None


def cap_database(store: SqlStore) -> None:
    """Every connection may not grow the file: SQLite answers SQLITE_FULL, like a full disk."""
    store.engine.dispose()

    @event.listens_for(store.engine, "connect")
    def _cap(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        pages = cur.execute("PRAGMA page_count").fetchone()[0]
        cur.execute(f"PRAGMA max_page_count={pages}")
        cur.close()


def test_a_full_disk_raises_store_unavailable_with_the_real_reason(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # SQLite's own full disk (PostgreSQL's lost server: tests/unit/store/test_db.py).
    store = open_store(tmp_path / "db.sqlite3")
    attempt = claimed_attempt(store)
    cap_database(store)
    caplog.set_level(logging.DEBUG)
    with pytest.raises(StoreUnavailable) as caught:
        for _ in range(50):
            store.append_log(attempt, "w" * 3000)
    assert caught.value.reason == "database or disk is full"
    assert str(caught.value) == "the store is unavailable: database or disk is full"
    assert isinstance(caught.value.__cause__, Exception)
    assert "cannot rollback" not in str(caught.value.__cause__)
    # The store still works for what fits, and the failed transaction left nothing.
    before = store.log_page(attempt, 0, 1 << 20).text
    with pytest.raises(StoreUnavailable):
        store.append_log(attempt, "v" * 3000)
    assert store.log_page(attempt, 0, 1 << 20).text == before
    store.heartbeat(attempt)


def test_other_errors_in_a_transaction_pass_through_and_roll_back(store: SqlStore) -> None:
    attempt = claimed_attempt(store)
    with pytest.raises(ValueError), store.tx() as conn:
        conn.execute(logs.insert().values(attempt_id=attempt, text="gone", created_at=0))
        raise ValueError("caller's own error")
    assert store.log_page(attempt, 0).text == ""


def test_a_nul_in_build_output_is_stored_as_the_replacement_character(store: SqlStore) -> None:
    # PostgreSQL's text holds no NUL; both databases store the same text.
    attempt = claimed_attempt(store)
    store.append_log(attempt, "before\x00after\n")
    assert store.log_page(attempt, 0).text == "before\ufffdafter\n"
