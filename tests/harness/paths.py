"""Where third-party test data lives. ``../shared`` is absent in a fresh clone: tests that
need it skip with ``SHARED_MISSING`` as the reason. In CI (env ``CI`` set) they fail with
that message instead: CI always has ``../shared``, and the corpus suite must never be
skipped there."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[2]
SHARED = PROJECT.parent / "shared"
CORPUS = SHARED / "corpus" / "wercker-yml"
GITHUB_DATA = SHARED / "github"
SHARED_MISSING = f"{SHARED} is absent (a fresh clone); CI provides ../shared"


def in_ci() -> bool:
    """``CI`` is set to something other than empty, ``0``, ``false`` or ``no``."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def need_shared(path: Path) -> Path:
    """Returns ``path``; when it is absent, skips the calling test with a clear reason, or
    in CI fails it with the same message."""
    if not path.exists():
        if in_ci():
            pytest.fail(SHARED_MISSING)
        pytest.skip(SHARED_MISSING)
    return path
