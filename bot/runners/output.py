"""Step output to the build log, in whole lines (shared by both runners)."""

from __future__ import annotations

import codecs
import time

from bot.logs import Log

_MAX_PARTIAL = 64 * 1024
PARTIAL_SECONDS = 0.3
"""A partial line (a prompt, progress dots) is shown once output pauses this long."""


class OutputRelay:
    """Hands a step's output to the log in whole lines, so that masking (done per chunk by
    the log) sees a secret in one piece even when the engine split it across frames. A
    partial line is still shown once the step pauses (a prompt, a progress dot)."""

    def __init__(self, log: Log) -> None:
        self._log = log
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._partial = ""
        self.partial_since: float | None = None

    def feed(self, data: bytes) -> None:
        text = self._partial + self._decoder.decode(data)
        head, newline, tail = text.rpartition("\n")
        if newline:
            self._log.output(head + newline)
        self._partial = tail
        if len(self._partial) > _MAX_PARTIAL:
            self.flush()
        elif self._partial and self.partial_since is None:
            self.partial_since = time.monotonic()
        elif not self._partial:
            self.partial_since = None

    def flush(self) -> None:
        if self._partial:
            self._log.output(self._partial)
        self._partial = ""
        self.partial_since = None

    def warn(self, message: str) -> None:
        self.flush()
        self._log.warn(message)

    def close(self) -> None:
        self._partial += self._decoder.decode(b"", final=True)
        self.flush()
