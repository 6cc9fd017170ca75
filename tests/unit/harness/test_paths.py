"""``need_shared`` (``tests/harness/paths.py``): the corpus suite skips in a fresh clone,
but never in CI."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.harness.paths import SHARED_MISSING, need_shared


def test_present_path_is_returned(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    assert need_shared(tmp_path) == tmp_path


def test_missing_path_skips_outside_ci(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception) as caught:
        need_shared(tmp_path / "missing")
    assert str(caught.value) == SHARED_MISSING


@pytest.mark.parametrize("value", ["true", "1", "yes"])
def test_missing_path_fails_in_ci(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("CI", value)
    # Catch a skip too, so that a skip in CI fails this test instead of skipping it.
    with pytest.raises((pytest.fail.Exception, pytest.skip.Exception)) as caught:
        need_shared(tmp_path / "missing")
    assert caught.type is pytest.fail.Exception
    assert str(caught.value) == SHARED_MISSING


@pytest.mark.parametrize("value", ["", "false", "0"])
def test_ci_switched_off_still_skips(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("CI", value)
    with pytest.raises(pytest.skip.Exception):
        need_shared(tmp_path / "missing")
