"""The build log seam: executors write here and never touch the store or the forge."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Protocol

from bot.masking import Masker, MaskStream, mask_fragment


class Log(Protocol):
    """Where steps, runners and pushers report what they do.

    ``info``/``warn`` write one bot line each; ``output`` writes a raw chunk of a step's
    output. Implementations mask secrets before anything is stored or shown, so callers may
    pass any text. ``progress`` is for long work (clone, layer build, upload): a short line
    that may be throttled.
    """

    def info(self, message: str) -> None: ...

    def warn(self, message: str) -> None: ...

    def output(self, chunk: str) -> None: ...

    def progress(self, message: str) -> None: ...

    def add_secrets(self, values: Iterable[str]) -> None:
        """Masks these values too from now on (credentials a step resolved at run time)."""


class CallbackLog:
    """A Log that masks and hands each piece of text to ``write``. Thread-safe.

    Step output is masked as a stream (``MaskStream``): a tail that could be the start of a
    secret is held back until the next chunk shows whether it is one, so a secret printed
    in two parts (a pause, a split frame) is still masked before anything is written. A
    bot line (``info``/``warn``/``progress``) is whole: it first releases what is held
    (``****`` when it is 4+ characters, since it is the start of a secret). ``close()``
    releases it at the end.
    """

    def __init__(self, write: Callable[[str], None], masker: Masker | None = None) -> None:
        self._write = write
        self.masker = masker or Masker()
        self._stream = MaskStream(self.masker)
        self._lock = threading.Lock()

    def _sink(self, text: str, step_output: bool) -> None:
        """Where masked text goes (under the lock); subclasses may tell output from lines."""
        self._write(text)

    def _emit_line(self, line: str) -> None:
        with self._lock:
            held = self._stream.release()
            if held:
                self._sink(held, True)
            self._sink(self.masker.mask(line), False)

    def info(self, message: str) -> None:
        self._emit_line(f"[wercker-bot] {message}\n")

    def warn(self, message: str) -> None:
        self._emit_line(f"[wercker-bot] warning: {message}\n")

    def output(self, chunk: str) -> None:
        with self._lock:
            text = self._stream.feed(chunk)
            if text:
                self._sink(text, True)

    def progress(self, message: str) -> None:
        self._emit_line(f"[wercker-bot] {message}\n")

    def add_secrets(self, values: Iterable[str]) -> None:
        with self._lock:
            self.masker.add(values)

    def close(self) -> None:
        """Writes out what masking held back. Idempotent; later calls still work."""
        with self._lock:
            held = self._stream.release()
            if held:
                self._sink(held, True)


class MemoryLog(CallbackLog):
    """A Log that keeps everything in memory; for tests and the CLI's summaries."""

    def __init__(self, masker: Masker | None = None) -> None:
        self.chunks: list[str] = []
        super().__init__(self.chunks.append, masker)

    @property
    def text(self) -> str:
        """Everything written so far, plus what masking still holds back (as it would be
        released now), so a test sees the whole output without calling ``close()``."""
        return "".join(self.chunks) + mask_fragment(self._stream.held)
