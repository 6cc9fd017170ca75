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
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
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
    # The client learns when to come back; the store's reason (which may name the database's
    # user and host) is logged, not answered.
    assert resp.get_json() == {"error": "the store is unavailable; redeliver later"}
    assert "database or disk is full" not in resp.text
    assert any(
        "GET /api/builds" in r.getMessage() and "database or disk is full" in r.getMessage()
        for r in caplog.records
    )


def test_a_postgresql_reason_naming_user_and_host_stays_out_of_the_body(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    settings = parse_settings(
        {"data_dir": str(tmp_path), "github": {"webhook_secret": "x" * 16}}, {}, base_dir=tmp_path
    )
    services = build_services(settings)
    reason = 'connection to server at "db.internal" (10.0.0.5) failed: user "wb_prod" denied'

    def failing(*_args: object, **_kwargs: object) -> None:
        raise StoreUnavailable(reason)

    monkeypatch.setattr(services.store, "build_detail", failing)
    resp = create_app(services=services).test_client().get("/api/builds/1")
    assert resp.status_code == 503 and resp.headers["Retry-After"] == "60"
    for leak in ("db.internal", "10.0.0.5", "wb_prod"):
        assert leak not in resp.text
    assert any(reason in r.getMessage() for r in caplog.records)


def test_a_failing_read_is_503_not_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
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
    assert resp.get_json() == {"error": "the store is unavailable; redeliver later"}
    assert "disk I/O error" not in resp.text and "SELECT" not in resp.text
    assert any("disk I/O error" in r.getMessage() for r in caplog.records)  # logged instead
