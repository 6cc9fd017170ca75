"""Step output to the build log, in whole lines (shared by both runners)."""

from __future__ import annotations

import codecs
import time

from bot.logs import Log
from bot.runners.base import ABORTED, Timeouts

_MAX_PARTIAL = 64 * 1024
PARTIAL_SECONDS = 0.3
"""A partial line (a prompt, progress dots) is shown once output pauses this long."""
ABORT_POLL_SECONDS = 0.2
"""How often a step whose attempt may be aborted looks at its ``Abort``."""


class OutputRelay:
    """Hands a step's output to the log in whole lines, so that masking sees a secret in
    one piece even when the engine split it across frames. A partial line is still shown
    once the step pauses (a prompt, a progress dot); the log holds back any end of it that
    could be the start of a secret (``bot.masking.MaskStream``)."""

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


class Watchdog:
    """Times one step for both runners: how long the output loop may wait, and which of
    ``command-timeout``/``no-response-timeout`` (if any) has passed, or ``ABORTED`` once
    the attempt's ``Timeouts.abort`` is set (a stop from outside is killed the same way as
    a timeout). It also shows a pending partial line once output pauses."""

    def __init__(self, timeouts: Timeouts, relay: OutputRelay) -> None:
        self.timeouts = timeouts
        self.relay = relay
        self.started = self.last_output = time.monotonic()

    def output(self, data: bytes) -> None:
        self.last_output = time.monotonic()
        self.relay.feed(data)

    def wait_seconds(self, cap: float) -> float:
        now = time.monotonic()
        waits = [cap]
        if self.timeouts.command is not None:
            waits.append(self.started + self.timeouts.command - now)
        if self.timeouts.no_response is not None:
            waits.append(self.last_output + self.timeouts.no_response - now)
        if self.relay.partial_since is not None:
            waits.append(self.relay.partial_since + PARTIAL_SECONDS - now)
        if self.timeouts.abort is not None:
            waits.append(ABORT_POLL_SECONDS)
        return max(0.0, min(waits))

    def aborted(self) -> bool:
        """Whether the attempt's ``Abort`` asks the step to stop (cheap: call it often)."""
        return self.timeouts.abort is not None and self.timeouts.abort.is_set()

    def expired(self) -> str | None:
        """Call when a wait ended with no output: ``ABORTED``, the timeout that passed, or
        ``None``."""
        if self.aborted():
            return ABORTED
        now = time.monotonic()
        partial = self.relay.partial_since
        if partial is not None and now - partial >= PARTIAL_SECONDS:
            self.relay.flush()
        if self.timeouts.command is not None and now - self.started >= self.timeouts.command:
            return "command-timeout"
        no_response = self.timeouts.no_response
        if no_response is not None and now - self.last_output >= no_response:
            return "no-response-timeout"
        return None
