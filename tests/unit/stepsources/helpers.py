"""A step package directory written from a dict of file names and texts."""

from __future__ import annotations

from pathlib import Path


def package(root: Path, files: dict[str, str]) -> Path:
    """``root`` (created, with parents) holding ``files``; returns ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (root / name).write_text(text)
    return root
