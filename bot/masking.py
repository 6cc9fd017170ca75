"""Masking of secret values in any text a user can see (behaviour §9)."""

from __future__ import annotations

from collections.abc import Iterable

MASK = "****"
MIN_SECRET_LENGTH = 4


class Masker:
    """Replaces every known secret value with ``****``.

    Multi-line values are masked line by line, so a key printed one line at a time is still
    hidden. Values shorter than four characters are not masked: they would mangle ordinary text.
    Longer values are replaced first so that a secret containing another is masked whole.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._needles: set[str] = set()
        self.add(secrets)

    def add(self, secrets: Iterable[str]) -> None:
        for value in secrets:
            if not value:
                continue
            for piece in [value, *value.splitlines()]:
                piece = piece.strip("\r")
                if len(piece.strip()) >= MIN_SECRET_LENGTH:
                    self._needles.add(piece)
        self._ordered = sorted(self._needles, key=len, reverse=True)

    def mask(self, text: str) -> str:
        for needle in self._ordered:
            if needle in text:
                text = text.replace(needle, MASK)
        return text

    def __bool__(self) -> bool:
        return bool(self._needles)
