"""``FakeLogArchive``: an in-memory ``bot.logarchive.LogArchive`` for unit tests.

It keeps to the Protocol's docstrings: ``put`` consumes its chunks as it goes and replaces
the object only once every chunk was read (a failed upload leaves the old copy), and every
method raises ``ArchiveError`` while ``down`` is set. ``largest_chunk`` records the biggest
chunk ``put`` was handed, so a test can see the log was streamed, not joined first;
``puts`` counts the uploads that completed. ``during_put`` (if set) is called after the
first chunk of each upload, for a test that writes to the store meanwhile.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from bot.logarchive import ArchiveError, AttemptRef, LogArchive


@dataclass
class FakeLogArchive:
    prefix: str = "logs/"
    down: bool = False
    objects: dict[str, tuple[bytes, int]] = field(default_factory=dict)
    """key → (body, last row)."""
    puts: int = 0
    largest_chunk: int = 0
    during_put: Callable[[], None] | None = None

    def _check(self) -> None:
        if self.down:
            raise ArchiveError("the fake archive is down")

    def key_for(self, attempt: AttemptRef) -> str:
        return f"{self.prefix}{attempt.name}"

    def put(self, key: str, chunks: Iterable[bytes], last_row: int) -> None:
        self._check()
        body = bytearray()
        for index, chunk in enumerate(chunks):
            self.largest_chunk = max(self.largest_chunk, len(chunk))
            body += chunk
            if index == 0 and self.during_put is not None:
                self.during_put()
        self._check()
        self.objects[key] = (bytes(body), last_row)
        self.puts += 1

    def last_row(self, key: str) -> int | None:
        self._check()
        found = self.objects.get(key)
        return found[1] if found else None

    def read(self, key: str) -> Iterator[bytes]:
        self._check()
        if key not in self.objects:
            raise FileNotFoundError(key)
        body = self.objects[key][0]
        for start in range(0, len(body), 4096):
            yield body[start : start + 4096]

    def text(self, key: str) -> str:
        """The copy at ``key`` as text (for assertions)."""
        return b"".join(self.read(key)).decode()


def _typed(archive: FakeLogArchive) -> LogArchive:
    return archive  # mypy checks the fake against the Protocol here
