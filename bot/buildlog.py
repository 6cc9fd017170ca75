"""The build log of one attempt: masked, buffered, and written to the store in batches so
that a chatty step does not turn into one write transaction per line."""

from __future__ import annotations

import logging
import threading
import time

from bot.logs import CallbackLog
from bot.masking import Masker
from bot.store.store import Store

logger = logging.getLogger(__name__)

FLUSH_SECONDS = 0.5
FLUSH_BYTES = 16384


class StoreLog(CallbackLog):
    """A ``Log`` for one attempt. Call ``close()`` at the end (idempotent)."""

    def __init__(self, store: Store, attempt_id: int, masker: Masker, echo: bool = False) -> None:
        self._store = store
        self._attempt = attempt_id
        self._buffer: list[str] = []
        self._size = 0
        self._cond = threading.Condition()
        self._closed = False
        self._echo = echo
        super().__init__(self._append, masker)
        self._thread = threading.Thread(target=self._run, name=f"log-{attempt_id}", daemon=True)
        self._thread.start()

    def _append(self, text: str) -> None:
        # Masking happened in CallbackLog, under its lock; the secret never reaches here.
        with self._cond:
            self._buffer.append(text)
            self._size += len(text)
            if self._size >= FLUSH_BYTES:
                self._cond.notify()

    def _take(self) -> str:
        with self._cond:
            text = "".join(self._buffer)
            self._buffer.clear()
            self._size = 0
            return text

    def flush(self) -> None:
        text = self._take()
        if not text:
            return
        try:
            self._store.append_log(self._attempt, text)
        except Exception:
            with self._cond:  # put it back in front, so nothing is lost or reordered
                self._buffer.insert(0, text)
                self._size += len(text)
            raise

    def _run(self) -> None:
        last_beat = time.monotonic()
        while True:
            with self._cond:
                if self._closed:
                    break
                self._cond.wait(FLUSH_SECONDS)
            try:
                self.flush()
                if time.monotonic() - last_beat > 15:
                    self._store.heartbeat(self._attempt)
                    last_beat = time.monotonic()
            except Exception:
                # The store is failing for a moment (locked, disk): keep the buffer and the
                # thread; the next round retries. A dead thread would stop the heartbeat and
                # get a live attempt recovered as dead.
                logger.exception("writing the log of attempt %s failed; retrying", self._attempt)

    def close(self) -> None:
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._cond.notify()
        self._thread.join(timeout=10)
        self.flush()
