"""The build log of one attempt: masked, capped, buffered in bounded memory, and written to
the store in batches so that a chatty step does not turn into one write transaction per line.

Two limits keep a step that prints without end from hurting the bot:

- ``limit`` (``log_limit_mb``): past it, step output is not stored; one line says where the
  log was cut. The bot's own lines go on into a small reserve, so step results and
  "attempt N passed" are still there; at the end a line says how much was dropped.
- ``buffer_limit``: at most this much text waits in memory for the store. When it is full
  the step's output waits for the writer (backpressure); if the store is failing, text is
  dropped and counted instead, and once writes work again (or at close) a line says how
  many bytes were lost and why. ``incomplete`` then tells the build to say so too.
"""

from __future__ import annotations

import logging
import threading
import time

from sqlalchemy.exc import DBAPIError

from bot.dispatch.base import AttemptFenced
from bot.errors import StoreUnavailable
from bot.logs import CallbackLog
from bot.masking import Masker
from bot.settings import DEFAULT_LOG_LIMIT_MB
from bot.store.base import Store

logger = logging.getLogger(__name__)

FLUSH_SECONDS = 0.5
"""How long text may wait in memory before the writer stores it."""
FLUSH_BYTES = 16384
"""The writer stores at once when this much text is waiting."""
RETRY_SECONDS = 0.5
"""How often the writer retries a failing store."""
BUFFER_BYTES = 4 * 1024 * 1024
"""At most this much text waits in memory for the store (the default ``buffer_limit``)."""
BACKPRESSURE_SECONDS = 10.0
"""How long a producer waits for room before its text counts as lost."""
CLOSE_SECONDS = 10.0
"""How long ``close()`` keeps retrying to store what is left."""
HEARTBEAT_SECONDS = 15.0
LOG_RESERVE = 64 * 1024
"""Room past ``limit`` for the bot's own lines (step results, the attempt's end)."""
_CLOSING_ROOM = 2048  # the end of the reserve, kept for the lines ``close()`` writes
_MB = 1024 * 1024


def _limit_text(limit: int) -> str:
    return f"{limit // _MB} MB" if limit % _MB == 0 else f"{limit} bytes"


def _reason(err: Exception) -> str:
    """One line saying why a write failed, without SQL text or parameters (which would be
    a whole batch of log)."""
    if isinstance(err, StoreUnavailable):
        return err.reason
    source: object = err.orig if isinstance(err, DBAPIError) else err
    lines = str(source).strip().splitlines()
    return lines[0][:200] if lines else type(err).__name__


class StoreLog(CallbackLog):
    """A ``Log`` for one attempt, written to ``store`` by a background thread.

    Memory stays within about ``buffer_limit`` whatever a step prints, and at most
    ``limit + reserve`` bytes are stored, closing lines included (plus one short line per
    store outage that lost text). ``cut`` counts the
    bytes left out by the limit; ``dropped`` the bytes lost because the store could not
    write (``incomplete``). Call ``close()`` at the end (idempotent, never raises): it
    releases held-back text, retries what is left for ``CLOSE_SECONDS`` and writes the
    closing lines.
    """

    def __init__(
        self,
        store: Store,
        attempt_id: int,
        masker: Masker,
        echo: bool = False,
        *,
        limit: int = DEFAULT_LOG_LIMIT_MB * _MB,
        reserve: int = LOG_RESERVE,
        buffer_limit: int = BUFFER_BYTES,
    ) -> None:
        self._store = store
        self._attempt = attempt_id
        self._echo = echo
        self.limit = limit
        self.reserve = max(reserve, 2 * _CLOSING_ROOM)
        self.buffer_limit = buffer_limit
        # Limit accounting: only producers touch these, under CallbackLog's lock.
        self._accepted = 0
        self._cut_output = 0
        self._cut_lines = 0
        self._was_cut = False
        # Buffer and writer state, under ``_cond``.
        self._cond = threading.Condition()
        self._buffer: list[str] = []
        self._size = 0  # bytes in the buffer plus the batch being written
        self._inflight = 0
        self.peak_buffered = 0
        self._failing: str | None = None  # why the last write failed; None once one works
        self._stalled = False  # a producer gave up waiting for a slow writer
        self._lost = 0
        self._lost_pending = 0  # lost since the last "bytes of log lost" line
        self._lost_reason = ""
        self._closing = False
        self._closed = False
        super().__init__(self._write_unused, masker)
        self._thread = threading.Thread(target=self._run, name=f"log-{attempt_id}", daemon=True)
        self._thread.start()

    # -- what callers may look at -----------------------------------------------------------

    @property
    def buffered(self) -> int:
        """Bytes waiting in memory for the store (including the batch being written)."""
        with self._cond:
            return self._size

    @property
    def dropped(self) -> int:
        """Bytes lost because the store could not write them."""
        with self._cond:
            return self._lost

    @property
    def incomplete(self) -> bool:
        """Whether text was lost to a failing store (not to the limit, which is policy)."""
        return self.dropped > 0

    @property
    def cut(self) -> int:
        """Bytes of step output (and bot lines) left out because the log hit ``limit``."""
        return self._cut_output + self._cut_lines

    # -- producers ----------------------------------------------------------------------------

    def _write_unused(self, text: str) -> None:  # pragma: no cover - _sink is overridden
        raise AssertionError("StoreLog writes through _sink")

    def _sink(self, text: str, step_output: bool) -> None:
        # Called under CallbackLog's lock with masked text: the secret never reaches here.
        size = len(text.encode())
        if not step_output:
            if self._accepted + size > self.limit + self.reserve - _CLOSING_ROOM:
                self._cut_lines += size
                return
            self._admit(text, size)
            return
        if self._was_cut:
            self._cut_output += size
            return
        room = self.limit - self._accepted
        if size <= room:
            self._admit(text, size)
            return
        self._was_cut = True
        kept = text.encode()[:room].decode("utf-8", "ignore") if room > 0 else ""
        self._cut_output += size - len(kept.encode())
        line = (
            kept
            + ("\n" if kept and not kept.endswith("\n") else "")
            + f"[wercker-bot] log cut at {_limit_text(self.limit)} (log_limit_mb): the rest "
            "of the step output is not stored; the bot's own lines go on below\n"
        )
        self._admit(line, len(line.encode()))

    def _admit(self, text: str, size: int) -> None:
        self._accepted += size
        with self._cond:
            deadline: float | None = None
            while True:
                if self._lost_pending:
                    # Losing text already: keep losing until the "lost" line is written, so
                    # that line sits exactly where the gap is.
                    self._drop(size)
                    return
                if self._size + size <= self.buffer_limit or self._size == 0:
                    self._buffer.append(text)
                    self._size += size
                    self.peak_buffered = max(self.peak_buffered, self._size)
                    if self._size >= FLUSH_BYTES:
                        self._cond.notify_all()
                    return
                if self._failing is not None or self._stalled or self._closed:
                    self._drop(size)
                    return
                # Backpressure: the step waits (its output pipe fills and it pauses) while
                # the writer catches up, for a while.
                now = time.monotonic()
                deadline = deadline if deadline is not None else now + BACKPRESSURE_SECONDS
                if now >= deadline:
                    self._stalled = True
                    continue
                self._cond.notify_all()
                self._cond.wait(deadline - now)

    def _drop(self, size: int) -> None:
        # Under ``_cond``.
        if not self._lost_pending:
            self._lost_reason = self._failing or (
                f"no write finished within {BACKPRESSURE_SECONDS:.0f} s"
            )
        self._lost += size
        self._lost_pending += size

    # -- the writer ---------------------------------------------------------------------------

    def _write_once(self) -> bool:
        """Stores what is buffered as one batch. False when the store failed."""
        with self._cond:
            if not self._buffer:
                return True
            text = "".join(self._buffer)
            self._buffer.clear()
            self._inflight = self._size
        try:
            self._store.append_log(self._attempt, text)
        except Exception as err:
            reason = self.masker.mask(_reason(err))
            with self._cond:
                # Back in front, so nothing is reordered; the bytes never left ``_size``.
                self._buffer.insert(0, text)
                self._inflight = 0
                first = self._failing is None
                self._failing = reason
                self._cond.notify_all()  # waiting producers stop waiting and drop
            if first:
                # Once per outage, with the real reason; retries stay quiet.
                logger.error(
                    "attempt %s: the store cannot write its log (%s); keeping up to %d bytes "
                    "in memory and retrying every %.1f s",
                    self._attempt,
                    reason,
                    self.buffer_limit,
                    RETRY_SECONDS,
                )
            return False
        with self._cond:
            self._size -= self._inflight
            self._inflight = 0
            recovered = self._failing is not None or self._stalled
            self._failing = None
            self._stalled = False
            lost = self._lost_pending
            if lost:
                # The buffer holds only text from before the gap (nothing was taken in
                # during it), so the line goes at its end.
                line = (
                    f"[wercker-bot] {lost} bytes of log lost: the store could not write "
                    f"({self._lost_reason})\n"
                )
                self._buffer.append(line)
                self._size += len(line.encode())
                self._lost_pending = 0
            self._cond.notify_all()
        if recovered:
            logger.warning("attempt %s: log writes work again", self._attempt)
        return True

    def _pending(self) -> bool:
        with self._cond:
            return bool(self._buffer)

    def _run(self) -> None:
        last_beat = time.monotonic()
        beating = True
        while True:
            with self._cond:
                wake = time.monotonic() + (RETRY_SECONDS if self._failing else FLUSH_SECONDS)
                while not self._closed:
                    remaining = wake - time.monotonic()
                    if remaining <= 0 or (self._failing is None and self._size >= FLUSH_BYTES):
                        break
                    self._cond.wait(remaining)
                closing = self._closed
            self._write_once()
            if beating and time.monotonic() - last_beat > HEARTBEAT_SECONDS:
                # A live attempt must not look dead to recovery while its step is quiet.
                try:
                    self._store.heartbeat(self._attempt)
                    last_beat = time.monotonic()
                except AttemptFenced:
                    # Reaped while away. Through the fenced store this beat is the fence's
                    # check, whose refusal has already stopped the attempt (its ``Abort``,
                    # ``StoreFence.on_refused``): the step is being killed; no more beats.
                    logger.warning("attempt %s: reaped while away; stopping", self._attempt)
                    beating = False
                except Exception:
                    pass  # the write failure is reported once above; recovery decides later
            if closing:
                break
        # Closing: store what is left, retrying a failing store for a while.
        deadline = time.monotonic() + CLOSE_SECONDS
        while self._pending():
            if not self._write_once():
                if time.monotonic() >= deadline:
                    return
                time.sleep(RETRY_SECONDS)

    def flush(self) -> None:
        """Stores what is buffered now, in the caller's thread. Raises when the store
        fails (the text stays buffered for the writer to retry)."""
        self._write_once()
        with self._cond:
            failing = self._failing
        if failing is not None:
            raise StoreUnavailable(failing)

    def close(self) -> None:
        with self._cond:
            if self._closing:
                return
            self._closing = True
        super().close()  # what masking held back goes through the limit like any output
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(timeout=CLOSE_SECONDS + 5)
        with self._cond:
            left = self._size if not self._thread.is_alive() else 0
            if left:
                self._lost += left
                self._lost_pending += left
                self._buffer.clear()
                self._size = 0
            unreported = self._lost_pending
            lost, reason = self._lost, self._failing or self._lost_reason
        if self._thread.is_alive():
            logger.error(
                "attempt %s: the log writer is still busy after %.0f s; not waiting",
                self._attempt,
                CLOSE_SECONDS,
            )
            return
        closing = ""
        if self.cut:
            closing = (
                f"[wercker-bot] log cut at {_limit_text(self.limit)} (log_limit_mb): "
                f"{self._cut_output} more bytes of step output were not stored"
                + (f", nor {self._cut_lines} bytes of bot lines" if self._cut_lines else "")
                + "\n"
            )
        if unreported:
            closing += (
                f"[wercker-bot] {unreported} bytes of log lost: the store could not write "
                f"({reason})\n"
            )
        try:
            self._store.append_log(self._attempt, closing)
        except Exception as err:
            logger.error(
                "attempt %s: could not store the end of its log (%s)", self._attempt, _reason(err)
            )
        if lost:
            logger.error(
                "attempt %s: %d bytes of its log were lost: the store could not write (%s)",
                self._attempt,
                lost,
                reason,
            )
