"""The web app's pages and API (bot/web/pages.py): log serving (bounded tail, pages, raw
download), the JSON shape of builds, masking, and a store that cannot be used."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask.testing import FlaskClient

from bot.app import create_app
from bot.models import Result
from bot.services import Services
from bot.settings import parse_settings
from bot.wiring import build_services
from tests.harness.builds import claimed_attempt

SECRET = "pages-secret-value"


@pytest.fixture
def services(tmp_path: Path) -> Services:
    settings = parse_settings(
        {
            "data_dir": str(tmp_path),
            "base_url": "http://bot.test",
            "github": {"webhook_secret": "s"},
            "repos": {"acme/app": {"secrets": {"PW": SECRET}}},
        },
        {},
        base_dir=tmp_path,
    )
    return build_services(settings)


@pytest.fixture
def client(services: Services) -> FlaskClient:
    return create_app(services=services).test_client()


def new_attempt(services: Services, delivery: str) -> int:
    attempt_id = claimed_attempt(services.store, delivery_id=delivery)
    services.store.finish_attempt(attempt_id, Result.PASSED, "Passed")
    return attempt_id


def test_a_short_log_is_shown_whole_with_a_link_to_the_text(
    services: Services, client: FlaskClient
) -> None:
    attempt = new_attempt(services, "d1")
    services.store.append_log(attempt, "hello\n")
    html = client.get("/builds/1").get_data(as_text=True)
    assert "hello" in html and "Showing the end" not in html
    assert 'href="/builds/1/attempts/1/log.txt"' in html
    shown = client.get("/api/builds/1").get_json()["attempts"][0]
    assert shown["log"] == "hello\n" and shown["log_complete"] is True
    assert shown["log_cursor"] > 0 and shown["log_url"] == "/builds/1/attempts/1/log.txt"


def test_a_long_log_shows_its_end_and_says_so(services: Services, client: FlaskClient) -> None:
    attempt = new_attempt(services, "d1")
    for i in range(100):
        services.store.append_log(attempt, f"{i:04d}" + "x" * 9995 + "\n")
    html = client.get("/builds/1").get_data(as_text=True)
    assert "Showing the end of this log (the last 256 KB)" in html
    assert "0099xxx" in html and "0000xxx" not in html


def test_earlier_attempts_show_a_shorter_end(services: Services, client: FlaskClient) -> None:
    first = new_attempt(services, "d1")
    services.store.append_log(first, "a" * 100_000 + "\n")
    # Redelivery of the same delivery after it finished: attempt 2 of build 1.
    second = new_attempt(services, "d1")
    services.store.append_log(second, "b" * 100_000 + "\n")
    shown = client.get("/api/builds/1").get_json()["attempts"]
    assert [len(a["log"]) for a in shown] == [16 * 1024, 100_001]


def test_log_api_pages_are_capped_and_masked(services: Services, client: FlaskClient) -> None:
    attempt = new_attempt(services, "d1")
    services.store.append_log(attempt, f"pw {SECRET}\n" * 50_000)
    body = client.get(f"/api/attempts/{attempt}/log?after=0&max_bytes=999999999").get_json()
    assert len(body["text"].encode()) <= 256 * 1024 and body["more"] is True
    assert SECRET not in body["text"] and "pw ****" in body["text"]
    small = client.get(f"/api/attempts/{attempt}/log?after=0&max_bytes=1").get_json()
    assert len(small["text"]) <= 16 * 1024  # one row at least, at most a row
    assert client.get(f"/api/attempts/{attempt}/log?max_bytes=x").status_code == 400


def test_raw_log_of_an_unknown_attempt_is_404(services: Services, client: FlaskClient) -> None:
    new_attempt(services, "d1")
    assert client.get("/builds/1/attempts/7/log.txt").status_code == 404
    assert client.get("/builds/99/attempts/1/log.txt").status_code == 404
    assert client.get(f"/builds/{2**70}/attempts/1/log.txt").status_code == 404


def test_raw_log_is_masked_across_its_pages(services: Services, client: FlaskClient) -> None:
    attempt = new_attempt(services, "d1")
    # Stored unmasked across rows, as logs written before stream masking could be.
    services.store.append_log(attempt, "a" * (16 * 1024 - 5) + SECRET[:9])
    services.store.append_log(attempt, SECRET[9:] + "\n")
    raw = client.get("/builds/1/attempts/1/log.txt")
    assert raw.status_code == 200 and raw.mimetype == "text/plain"
    assert raw.get_data(as_text=True) == "a" * (16 * 1024 - 5) + "****\n"


def _columns(table: object) -> set[str]:
    return {c.name for c in table.columns}  # type: ignore[attr-defined]


def test_the_api_serves_the_stored_rows_as_json_masked(
    services: Services, client: FlaskClient
) -> None:
    from bot.store.schema import attempts, builds, images, outbox, pipelines, steps

    attempt = claimed_attempt(services.store, message=f"deploy with {SECRET}")
    pipe = services.store.start_pipeline(attempt, 0, "build")
    step = services.store.start_step(pipe, 0, "main", "script", "test")
    services.store.finish_step(step, Result.PASSED, 0, f"said {SECRET}")
    services.store.add_image(attempt, "build", "r.test", "acme/app", ["v1"], "sha256:d")
    listed = client.get("/api/builds").get_json()["builds"]
    assert set(listed[0]) == _columns(builds) | {"attempt"}
    assert set(listed[0]["attempt"]) == _columns(attempts)
    assert listed[0]["message"] == "deploy with ****" and listed[0]["pipelines"] == ["build"]
    detail = client.get("/api/builds/1").get_json()
    assert set(detail) == _columns(builds) | {"attempts", "url", "statuses"}
    assert detail["url"] == "http://bot.test/builds/1"
    shown = detail["attempts"][0]
    log_keys = {"log", "log_cursor", "log_complete", "log_window", "log_url", "log_api"}
    assert set(shown) == _columns(attempts) | {"pipelines", "images"} | log_keys
    assert set(shown["pipelines"][0]) == _columns(pipelines) | {"steps"}
    assert set(shown["pipelines"][0]["steps"][0]) == _columns(steps) | {"duration_s"}
    assert shown["pipelines"][0]["steps"][0]["message"] == "said ****"
    assert set(shown["images"][0]) == _columns(images)
    # The context is the configured one (the reporter's).
    assert {s["context"] for s in detail["statuses"]} == {"wercker-bot/build"}
    assert set(detail["statuses"][0]) == _columns(outbox)
    html = client.get("/builds/1").get_data(as_text=True)
    assert "said ****" in html and SECRET not in html
    assert client.get("/api/builds/2").status_code == 404


def test_pages_on_a_database_that_cannot_be_opened_are_503(
    services: Services, client: FlaskClient, tmp_path: Path
) -> None:
    new_attempt(services, "d1")
    services.store.close()  # type: ignore[attr-defined]
    services.settings.db_path.rename(tmp_path / "moved.sqlite3")
    services.settings.db_path.mkdir()  # a directory where the database was: unusable
    for url in ("/api/builds", "/builds", "/builds/1", "/api/builds/1", "/api/attempts/1/log"):
        resp = client.get(url)
        assert resp.status_code == 503, url
        assert resp.headers["Retry-After"] == "60"
        assert resp.get_json() == {"error": "the store is unavailable; redeliver later"}
