"""An attempt's log: appended in bounded rows, read in bounded pages.

A row holds at most ``LOG_ROW_CHARS`` characters, so every read can stop at a row boundary
and memory stays bounded by a page whatever the log's size."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from sqlalchemy import Select, func, select, update

from bot.store.base import LOG_PAGE_BYTES, LOG_ROW_CHARS, READ_ROW_CHARS
from bot.store.db import Part, db_now
from bot.store.rows import LogPage, LogTail
from bot.store.schema import attempts, logs


def _row_text(row: Any) -> str:
    text = str(row.text)
    if int(row.chars) > READ_ROW_CHARS:
        text += (
            f"\n[wercker-bot] (this log row of {row.chars} characters, stored before logs "
            f"were bounded, is cut here at {READ_ROW_CHARS})\n"
        )
    return text


def _log_rows(attempt_id: int, after_id: int, newest_first: bool) -> Select[Any]:
    """The rows of a log after ``after_id``: id, text (at most ``READ_ROW_CHARS``) and the
    stored length in characters."""
    text = func.substr(logs.c.text, 1, READ_ROW_CHARS).label("text")
    order = logs.c.id.desc() if newest_first else logs.c.id
    return (
        select(logs.c.id, text, func.length(logs.c.text).label("chars"))
        .where(logs.c.attempt_id == attempt_id, logs.c.id > after_id)
        .order_by(order)
    )


def _window_start(data: bytes, room: int) -> str:
    """The last ``room`` bytes of ``data``, from the first line start inside them when
    there is one (whole lines only)."""
    cut = data[len(data) - room :].decode("utf-8", "ignore")
    newline = cut.find("\n")
    if 0 <= newline < len(cut) - 1:
        cut = cut[newline + 1 :]
    return cut


class SqlLogs(Part):
    """``LogReads`` and ``append_log`` on the database."""

    def append_log(self, attempt_id: int, text: str) -> None:
        """Appends ``text`` (already masked) to the attempt's log and bumps its heartbeat,
        in one transaction. The text is stored in rows of at most ``LOG_ROW_CHARS``
        characters, so every read can stop at a row boundary and stay bounded. Raises
        ``StoreUnavailable`` when the store cannot write; nothing is stored then."""
        if not text:
            return
        # PostgreSQL's text holds no NUL character; a build's output may. Stored the same
        # on both databases: as U+FFFD, the replacement character.
        text = text.replace("\x00", "\ufffd")
        now = time.time()
        rows = [
            {"attempt_id": attempt_id, "text": text[i : i + LOG_ROW_CHARS], "created_at": now}
            for i in range(0, len(text), LOG_ROW_CHARS)
        ]
        with self.db.tx() as conn:
            conn.execute(logs.insert(), rows)
            conn.execute(  # the heartbeat on the one clock every host shares (db_now)
                update(attempts)
                .where(attempts.c.id == attempt_id)
                .values(heartbeat_at=db_now(conn))
            )

    def log_text(
        self, attempt_id: int, after_id: int = 0, max_bytes: int = LOG_PAGE_BYTES
    ) -> tuple[str, int]:
        """``(text, cursor)`` of one bounded page of the log after row ``after_id`` (see
        ``log_page``); never the whole log. Pass ``cursor`` back to read on."""
        page = self.log_page(attempt_id, after_id, max_bytes)
        return page.text, page.next_id

    def log_page(
        self, attempt_id: int, after_id: int = 0, max_bytes: int = LOG_PAGE_BYTES
    ) -> LogPage:
        """The log rows after row ``after_id``, oldest first, up to ``max_bytes`` of UTF-8
        (at least one row, so a reader always advances; a row is at most ``LOG_ROW_CHARS``
        characters). ``next_id`` is the cursor for the next page; ``more`` says whether
        rows were left for it. Rows are read one at a time, so memory stays bounded by the
        page whatever the log's size."""
        parts: list[str] = []
        used = 0
        last = after_id
        more = False
        with self.db.read() as conn:
            result = conn.execute(_log_rows(attempt_id, after_id, newest_first=False))
            for row in result:
                piece = _row_text(row)
                size = len(piece.encode())
                if parts and used + size > max_bytes:
                    more = True
                    break
                parts.append(piece)
                used += size
                last = int(row.id)
            result.close()
        return LogPage("".join(parts), last, more)

    def log_tail(self, attempt_id: int, max_bytes: int = LOG_PAGE_BYTES) -> LogTail:
        """The last ``max_bytes`` (at most) of the log, for a page that shows where a build
        is. When the log is longer, the text starts at a line start inside the window and
        ``complete`` is false. ``last_id`` is the cursor of the newest row, for
        ``log_page`` (the API's ``?after=``) to read what comes next."""
        parts: list[str] = []
        used = 0
        last = 0
        complete = True
        with self.db.read() as conn:
            result = conn.execute(_log_rows(attempt_id, 0, newest_first=True))
            for row in result:
                last = last or int(row.id)
                piece = _row_text(row)
                data = piece.encode()
                if used + len(data) > max_bytes:
                    complete = False
                    if max_bytes > used:
                        parts.append(_window_start(data, max_bytes - used))
                    break
                parts.append(piece)
                used += len(data)
            result.close()
        parts.reverse()
        return LogTail("".join(parts), last, complete)

    def iter_log(self, attempt_id: int, page_bytes: int = LOG_PAGE_BYTES) -> Iterator[str]:
        """The whole log as a sequence of pages of at most about ``page_bytes`` each, each
        read on its own (no read transaction stays open while a slow client downloads)."""
        after = 0
        while True:
            page = self.log_page(attempt_id, after, page_bytes)
            if page.text:
                yield page.text
            if not page.more:
                return
            after = page.next_id

    def log_attempt_id(self, build_id: int, number: int) -> int | None:
        """The id of attempt ``number`` of build ``build_id`` (whose log rows these are)."""
        with self.db.read() as conn:
            row = conn.execute(
                select(attempts.c.id).where(
                    attempts.c.build_id == build_id, attempts.c.number == number
                )
            ).first()
        return int(row.id) if row else None
