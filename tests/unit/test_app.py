"""The app factory: error pages."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.app import create_app
from bot.errors import StoreUnavailable
from bot.settings import parse_settings
from bot.wiring import build_services
from tests.harness.builds import sql_store


def test_a_page_on_a_failing_store_is_503_with_retry_after(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = parse_settings(
        {"data_dir": str(tmp_path), "github": {"webhook_secret": "x" * 16}}, {}, base_dir=tmp_path
    )
    services = build_services(settings)

    def failing(*_args: object, **_kwargs: object) -> None:
        raise StoreUnavailable("database or disk is full")

    monkeypatch.setattr(services.store, "list_builds", failing)
    client = create_app(services=services).test_client()
    resp = client.get("/api/builds")
    assert resp.status_code == 503
    assert resp.headers["Retry-After"] == str(StoreUnavailable.retry_after) == "60"
    assert resp.get_json() == {
        "error": "the store cannot be used right now (database or disk is full); try again later"
    }


def test_a_failing_read_is_503_not_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sqlite3

    from sqlalchemy.exc import OperationalError

    settings = parse_settings(
        {"data_dir": str(tmp_path), "github": {"webhook_secret": "x" * 16}}, {}, base_dir=tmp_path
    )
    services = build_services(settings)

    def failing(*_args: object, **_kwargs: object) -> None:
        raise OperationalError("SELECT …", {}, sqlite3.OperationalError("disk I/O error"))

    # The driver fails under the real read: the store says StoreUnavailable, never more.
    monkeypatch.setattr(sql_store(services.store).engine, "connect", failing)
    resp = create_app(services=services).test_client().get("/builds/1")
    assert resp.status_code == 503
    assert "disk I/O error" in resp.get_json()["error"] and "SELECT" not in resp.text
