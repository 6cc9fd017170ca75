"""Upload progress for build logs: sizes for people, and a body that reports what was sent."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from bot.logs import Log


def human_size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


class ProgressReader:
    """A body that reports how much was sent, at most every ``every`` seconds. It has a
    length, so ``requests`` still sends ``Content-Length``; it does not close ``inner``."""

    def __init__(
        self, inner: Any, size: int, report: Callable[[int], None], every: float = 5.0
    ) -> None:
        self._inner = inner
        self._size = size
        self._report = report
        self._every = every
        self._sent = 0
        self._last = time.monotonic()

    def __len__(self) -> int:
        return self._size

    def read(self, n: int = -1) -> bytes:
        data: bytes = self._inner.read(n)
        self._sent += len(data)
        now = time.monotonic()
        if data and now - self._last >= self._every:
            self._last = now
            self._report(self._sent)
        return data


def uploading(log: Log, digest: str, size: int) -> Callable[[int], None]:
    def report(sent: int) -> None:
        log.progress(f"Layer {digest[:19]}… uploading: {human_size(sent)} / {human_size(size)}")

    return report
