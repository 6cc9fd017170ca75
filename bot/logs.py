"""The build log seam: executors write here and never touch the store or the forge."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Protocol

from bot.masking import Masker


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
    """A Log that masks and hands each chunk of text to ``write``. Thread-safe."""

    def __init__(self, write: Callable[[str], None], masker: Masker | None = None) -> None:
        self._write = write
        self.masker = masker or Masker()
        self._lock = threading.Lock()

    def _emit(self, text: str) -> None:
        with self._lock:
            self._write(self.masker.mask(text))

    def info(self, message: str) -> None:
        self._emit(f"[wercker-bot] {message}\n")

    def warn(self, message: str) -> None:
        self._emit(f"[wercker-bot] warning: {message}\n")

    def output(self, chunk: str) -> None:
        self._emit(chunk)

    def progress(self, message: str) -> None:
        self._emit(f"[wercker-bot] {message}\n")

    def add_secrets(self, values: Iterable[str]) -> None:
        with self._lock:
            self.masker.add(values)


class MemoryLog(CallbackLog):
    """A Log that keeps everything in memory; for tests and the CLI's summaries."""

    def __init__(self, masker: Masker | None = None) -> None:
        self.chunks: list[str] = []
        super().__init__(self.chunks.append, masker)

    @property
    def text(self) -> str:
        return "".join(self.chunks)
