"""``bot.dispatch.embedded``: the SQLite store's claim loop: a store that cannot be written
is reported once, and its recovery once, never a traceback per retry."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import pytest

from bot.dispatch import embedded
from bot.dispatch.base import Fence
from bot.errors import StoreUnavailable
from bot.settings import parse_settings
from bot.store.rows import Claim
from bot.wiring import build_services


def _never(claim: Claim, fence: Fence) -> None:
    raise AssertionError("nothing is claimable here")


def test_a_full_disk_is_reported_once_and_its_end_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    settings = parse_settings(
        {"data_dir": str(tmp_path), "github": {"webhook_secret": "x" * 16}}, {}, base_dir=tmp_path
    )
    services = build_services(settings)
    calls = {"n": 0}

    def claim_next(_name: str) -> None:
        calls["n"] += 1
        if calls["n"] <= 5:
            raise StoreUnavailable("database or disk is full")
        return None

    monkeypatch.setattr(services.store, "claim_next", claim_next)
    monkeypatch.setattr(embedded, "CLAIM_RETRY_SECONDS", 0.01)
    dispatcher = embedded.EmbeddedDispatcher(services.store)
    stop = threading.Event()
    caplog.set_level(logging.INFO, logger="bot.dispatch.embedded")
    thread = threading.Thread(target=dispatcher._work, args=(0, _never, stop), daemon=True)
    thread.start()
    deadline = time.monotonic() + 5
    while calls["n"] < 8 and time.monotonic() < deadline:
        time.sleep(0.01)
    stop.set()
    thread.join(5)
    messages = [r.getMessage() for r in caplog.records]
    failing = [m for m in messages if "cannot claim work" in m]
    assert len(failing) == 1 and "database or disk is full" in failing[0]
    assert sum("the store answers again" in m for m in messages) == 1
    assert not [r for r in caplog.records if r.exc_info], "no traceback per retry"
