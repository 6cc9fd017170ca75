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

    def pending_length(self, text: str) -> int:
        """The length of the longest suffix of ``text``'s last line that is a proper prefix
        of a secret: text that may turn into a secret once the next chunk arrives.

        Only the part after the last newline counts: every line of a multi-line secret is
        a secret of its own, so a line break ends any occurrence that still needs masking.
        """
        start = text.rfind("\n") + 1
        size = len(text)
        longest = 0
        for needle in self._ordered:
            if len(needle) - 1 <= longest:
                continue
            # A candidate suffix starts where needle[0] occurs, late enough to be shorter
            # than the needle; the earliest such start is the longest candidate.
            i = text.find(needle[0], max(start, size - len(needle) + 1))
            while i != -1 and size - i > longest:
                if needle.startswith(text[i:]):
                    longest = size - i
                    break
                i = text.find(needle[0], i + 1)
        return longest


def mask_fragment(text: str) -> str:
    """A held-back fragment released without its continuation: it is the start of a secret,
    so it is shown as ``****`` unless it is too short to say anything (the same threshold
    as for secrets themselves)."""
    return MASK if len(text) >= MIN_SECRET_LENGTH else text


class MaskStream:
    """Masks a stream of chunks so that a secret split across chunks is still masked.

    ``feed`` returns the masked text that is safe to show now and holds back the longest
    tail that could be the start of a secret (see ``Masker.pending_length``); the next
    chunk is appended to it. ``release`` returns what is held (through ``mask_fragment``)
    when the stream ends or is interrupted by a whole line of other text. Not thread-safe:
    the owner serializes calls.
    """

    def __init__(self, masker: Masker) -> None:
        self.masker = masker
        self.held = ""

    def feed(self, chunk: str) -> str:
        # Mask first, then look for a pending prefix: a secret that is complete inside
        # held + chunk must be masked whole, even if a shorter secret's prefix ends it.
        text = self.masker.mask(self.held + chunk)
        keep = self.masker.pending_length(text) if self.masker else 0
        self.held = text[len(text) - keep :] if keep else ""
        return text[: len(text) - keep]

    def release(self) -> str:
        held, self.held = self.held, ""
        return mask_fragment(held) if held else ""
