"""Where third-party test data lives. ``../shared`` is absent in a fresh clone: tests that
need it skip with ``SHARED_MISSING`` as the reason (CI always has it)."""

from __future__ import annotations

from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[2]
SHARED = PROJECT.parent / "shared"
CORPUS = SHARED / "corpus" / "wercker-yml"
GITHUB_DATA = SHARED / "github"
SHARED_MISSING = f"{SHARED} is absent (a fresh clone); CI provides ../shared"


def need_shared(path: Path) -> Path:
    """Returns ``path``, or skips the calling test with a clear reason when it is absent."""
    if not path.exists():
        pytest.skip(SHARED_MISSING)
    return path
