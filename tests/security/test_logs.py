"""Hostile build logs against the real store (SQLite in ``tmp_path``) and the real web app
(findings 5, 8, 12): a step that prints without end, a store that cannot write, a secret
printed in two parts with a pause, a log far bigger than a page, and a full disk at intake.
"""

from __future__ import annotations

import json
import logging
import secrets
import sqlite3
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import event, select

from bot.app import create_app
from bot.build import LOG_INCOMPLETE, Attempt
from bot.buildlog import BUFFER_BYTES, FLUSH_SECONDS, LOG_RESERVE
from bot.models import Result
from bot.pipeline import PipelineRun
from bot.runners.base import Timeouts
from bot.runners.output import PARTIAL_SECONDS, OutputRelay, Watchdog
from bot.services import Services
from bot.settings import parse_settings
from bot.store.schema import logs
from bot.wiring import build_services
from tests.harness.builds import new_push, sql_store
from tests.harness.github_fake import push_payload, webhook_headers

WEBHOOK_SECRET = "log-tests-webhook-secret"
REPO_SECRET = f"repo-secret-{secrets.token_hex(8)}"
MB = 1024 * 1024


@pytest.fixture
def services(tmp_path: Path) -> Services:
    settings = parse_settings(
        {
            "data_dir": str(tmp_path),
            "base_url": "http://bot.test",
            "log_limit_mb": 1,
            "github": {"webhook_secret": WEBHOOK_SECRET},
            "repos": {
                "acme/app": {"clone_url": "file:///nowhere", "secrets": {"TOKEN": REPO_SECRET}}
            },
        },
        {},
        base_dir=tmp_path,
    )
    return build_services(settings)


@pytest.fixture
def client(services: Services) -> FlaskClient:
    return create_app(services=services).test_client()


def claimed_attempt(services: Services, delivery: str = "d1") -> Attempt:
    services.store.record_push(
        new_push(
            delivery_id=delivery,
            message="m",
            pusher="p",
            html_url="https://github.com/acme/app",
        )
    )
    claim = services.store.claim_next("test")
    assert claim is not None
    return Attempt(claim, services)


def pass_build(attempt: Attempt) -> None:
    """What a real attempt does after its steps: the pipeline's status, then the end."""
    attempt.pipeline_started(0, "build")
    run = PipelineRun("build", Result.PASSED, "Passed")
    attempt.log.info("pipeline build: passed — Passed")
    attempt.pipeline_finished(run)
    attempt.conclude([run], ["build"])


def stored_rows(services: Services, attempt_id: int) -> list[str]:
    with sql_store(services.store).engine.connect() as conn:
        rows = conn.execute(
            select(logs.c.text).where(logs.c.attempt_id == attempt_id).order_by(logs.c.id)
        ).all()
    return [str(r.text) for r in rows]


def produce(relay: OutputRelay, total: int, line: bytes) -> None:
    """A step printing ``total`` bytes, in 16 KB reads as a runner hands them over."""
    block = line * (16384 // len(line))
    sent = 0
    while sent < total:
        relay.feed(block)
        sent += len(block)


def test_a_step_printing_past_the_limit_is_cut_and_the_bot_lines_survive(
    services: Services,
) -> None:
    attempt = claimed_attempt(services)
    limit = services.settings.log_limit
    assert limit == 1 * MB
    relay = OutputRelay(attempt.log)
    produce(relay, 12 * MB, b"y" * 99 + b"\n")
    relay.close()
    attempt.log.info("step script: passed")
    pass_build(attempt)
    attempt.log.close()

    text = "".join(stored_rows(services, attempt.claim.attempt_id))
    stored = len(text.encode())
    assert stored <= limit + LOG_RESERVE, stored
    assert stored >= limit  # the step's output was kept up to the limit
    assert text.count("log cut at 1 MB (log_limit_mb)") == 2  # where, and how much, once
    cut_line = next(line for line in text.splitlines() if "more bytes of step output" in line)
    dropped = int(cut_line.split(": ")[1].split(" ")[0])
    assert dropped == attempt.log.cut and 12 * MB - limit <= dropped <= 12 * MB
    # The bot's own lines after the cut are stored, in order, the attempt's end included.
    tail = text[text.index("log cut at 1 MB") :]
    assert "step script: passed" in tail and "attempt 1 passed" in tail
    assert tail.index("step script: passed") < tail.index("attempt 1 passed")
    detail = services.store.build_detail(int(attempt.build.id))
    assert detail is not None and detail.attempts[0].state == "passed"


class FailingAppends:
    """``append_log`` of the real store, failing like a full disk while ``failing``."""

    def __init__(self, services: Services) -> None:
        self.real = services.store.append_log
        self.failing = True
        self.calls = 0

    def __call__(self, attempt_id: int, text: str) -> None:
        self.calls += 1
        if self.failing:
            raise sqlite3.OperationalError("database or disk is full")
        self.real(attempt_id, text)


def test_a_failing_store_keeps_memory_bounded_and_says_the_log_is_incomplete(
    services: Services, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    appends = FailingAppends(services)
    monkeypatch.setattr(services.store, "append_log", appends)
    attempt = claimed_attempt(services)
    # This test is about the buffer, not the limit: let everything through the limit.
    attempt.log.limit = 1 << 40
    relay = OutputRelay(attempt.log)
    caplog.set_level(logging.WARNING, logger="bot.buildlog")

    tracemalloc.start()
    try:
        base, _ = tracemalloc.get_traced_memory()
        for _ in range(6):  # 48 MB while every write fails, for a few retry rounds
            produce(relay, 8 * MB, b"z" * 63 + b"\n")
            time.sleep(0.2)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert appends.calls >= 2  # the writer kept retrying
    assert peak - base < 4 * BUFFER_BYTES, f"{(peak - base) / MB:.1f} MB held while failing"
    assert attempt.log.peak_buffered <= BUFFER_BYTES
    assert attempt.log.incomplete and attempt.log.dropped > 40 * MB

    appends.failing = False
    # Once a write works again, the gap is marked where it is, with its size and reason.
    lost = "bytes of log lost: the store could not write (database or disk is full)"
    deadline = time.monotonic() + 5
    while not any(lost in row for row in stored_rows(services, attempt.claim.attempt_id)):
        assert time.monotonic() < deadline, "no 'bytes of log lost' line after recovery"
        time.sleep(0.1)
    relay.feed(b"after the store came back\n")
    relay.close()
    pass_build(attempt)
    attempt.log.close()

    text = "".join(stored_rows(services, attempt.claim.attempt_id))
    assert text.count(lost) == 1
    marked = int(text[: text.index(lost)].rsplit("[wercker-bot] ", 1)[1].strip())
    assert marked == attempt.log.dropped
    assert text.index(lost) < text.index("after the store came back")
    assert "attempt 1 passed" in text
    detail = services.store.build_detail(int(attempt.build.id))
    assert detail is not None
    assert detail.attempts[0].description.endswith(LOG_INCOMPLETE)
    final = services.store.statuses_for("acme/app", "a" * 40)[-1]
    assert final.state == "success" and final.description.endswith(LOG_INCOMPLETE)
    # The real reason is reported once, not once per retry and not hidden behind another.
    failures = [r for r in caplog.records if "cannot write its log" in r.getMessage()]
    assert len(failures) == 1 and "database or disk is full" in failures[0].getMessage()


def say_in_two_parts(watchdog: Watchdog, first: bytes, second: bytes) -> None:
    """Prints ``first``, pauses until the relay shows the partial line, then the rest."""
    watchdog.output(first)
    time.sleep(PARTIAL_SECONDS + 0.1)
    assert watchdog.expired() is None  # this is what hands the partial line to the log
    time.sleep(FLUSH_SECONDS * 3)  # the partial line would be a row of its own by now
    watchdog.output(second)


def test_a_secret_printed_in_two_parts_is_masked_everywhere(
    services: Services, client: FlaskClient
) -> None:
    attempt = claimed_attempt(services)
    # One secret the web app also knows (config), one only the build knew (resolved at run
    # time), so the page cannot hide a leak from storage by masking again.
    runtime = f"runtime-{secrets.token_hex(8)}"
    attempt.log.add_secrets([runtime])
    relay = OutputRelay(attempt.log)
    watchdog = Watchdog(Timeouts(None, None), relay)
    halves = [(REPO_SECRET[:10], REPO_SECRET[10:]), (runtime[:12], runtime[12:])]
    attempt_id = attempt.claim.attempt_id

    say_in_two_parts(watchdog, b"token: " + halves[0][0].encode(), halves[0][1].encode() + b"\n")
    seen_first = client.get(f"/api/attempts/{attempt_id}/log?after=0").get_json()
    say_in_two_parts(watchdog, b"runtime: " + halves[1][0].encode(), halves[1][1].encode())
    time.sleep(FLUSH_SECONDS * 3)
    seen_middle = client.get(f"/api/attempts/{attempt_id}/log?after=0").get_json()
    relay.close()
    pass_build(attempt)
    attempt.log.close()
    seen_rest = client.get(
        f"/api/attempts/{attempt_id}/log?after={seen_middle['cursor']}"
    ).get_json()

    build_id = int(attempt.build.id)
    views = {
        "stored rows": "\n---row---\n".join(stored_rows(services, attempt_id)),
        "incremental first": seen_first["text"],
        "incremental middle": seen_middle["text"],
        "incremental rest": seen_rest["text"],
        "page": client.get(f"/builds/{build_id}").get_data(as_text=True),
        "api": json.dumps(client.get(f"/api/builds/{build_id}").get_json()),
        "raw": client.get(f"/builds/{build_id}/attempts/1/log.txt").get_data(as_text=True),
    }
    for where, text in views.items():
        for secret, (head, rest) in zip([REPO_SECRET, runtime], halves, strict=True):
            assert secret not in text, where
            assert head not in text, f"the first part of a secret is in the {where}"
            assert rest not in text, f"the second part of a secret is in the {where}"
    assert "token: ****" in views["raw"] and "runtime: ****" in views["raw"]
    assert "token: ****" in views["page"]


def test_pages_and_api_serve_a_big_log_in_bounded_pieces(
    services: Services, client: FlaskClient
) -> None:
    attempt = claimed_attempt(services)
    attempt_id = attempt.claim.attempt_id
    lines = [f"line {i:07d} " + "x" * 80 + "\n" for i in range(60000)]  # about 5.6 MB
    original = "".join(lines)
    for i in range(0, len(lines), 500):
        services.store.append_log(attempt_id, "".join(lines[i : i + 500]))
    build_id = int(attempt.build.id)

    page = client.get(f"/builds/{build_id}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert len(page.data) < 300 * 1024
    assert lines[-1].strip() in html and lines[0].strip() not in html
    assert f"/builds/{build_id}/attempts/1/log.txt" in html  # the way to the whole log

    api = client.get(f"/api/builds/{build_id}")
    assert len(api.data) < 300 * 1024
    shown = api.get_json()["attempts"][0]
    assert shown["log_complete"] is False and shown["log"].endswith(lines[-1])

    # The incremental API: bounded pages whose cursors add up to the whole log.
    pieces: list[str] = []
    cursor = 0
    for _ in range(100):
        resp = client.get(f"/api/attempts/{attempt_id}/log?after={cursor}")
        assert len(resp.data) < 300 * 1024
        body = resp.get_json()
        pieces.append(body["text"])
        cursor = body["cursor"]
        if not body["more"]:
            break
    assert "".join(pieces) == original

    # The raw log streams from the store in pages: memory stays at a page or so.
    tracemalloc.start()
    try:
        raw = client.get(f"/builds/{build_id}/attempts/1/log.txt", buffered=False)
        assert raw.status_code == 200 and raw.is_streamed
        assert raw.mimetype == "text/plain"
        received = 0
        chunks: Iterator[bytes] = raw.iter_encoded()
        head = b""
        for chunk in chunks:
            received += len(chunk)
            head = head or chunk[:64]
        raw.close()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert received == len(original.encode()) and head.startswith(lines[0][:64].encode())
    assert peak < 8 * MB, f"{peak / MB:.1f} MB to stream a {len(original) / MB:.1f} MB log"


def fill_the_disk(services: Services) -> dict[str, bool]:
    """Caps the database at its current size on every connection, as a full disk would:
    SQLite answers "database or disk is full" when a write needs another page."""
    state = {"full": True}
    engine = sql_store(services.store).engine
    engine.dispose()

    @event.listens_for(engine, "connect")
    def _cap(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        pages = cur.execute("PRAGMA page_count").fetchone()[0]
        cur.execute(f"PRAGMA max_page_count={pages if state['full'] else 1 << 30}")
        cur.close()

    return state


def test_intake_answers_503_when_the_disk_is_full(
    services: Services, client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    full = fill_the_disk(services)
    answers = []
    for n in range(30):
        body = json.dumps(
            push_payload("acme/app", "refs/heads/main", f"{n + 1:040x}", message="m" * 2000)
        ).encode()
        headers = webhook_headers(body, WEBHOOK_SECRET, delivery=f"full-{n}")
        resp = client.post("/hooks/github", data=body, headers=headers)
        answers.append(resp)
        if resp.status_code != 202:
            break
    refused = answers[-1]
    assert refused.status_code == 503, refused.get_data(as_text=True)
    assert refused.headers["Retry-After"].isdigit()
    error = refused.get_json()["error"]
    # The reason is the operator's (the log's), never the answer's.
    assert error == "the store is unavailable; redeliver this webhook later"
    stored = len(services.store.list_builds(1000))
    assert stored == len(answers) - 1  # nothing of the refused delivery was kept
    assert any("database or disk is full" in r.getMessage() for r in caplog.records)

    # Nothing is lost: once there is room, the same delivery is accepted.
    full["full"] = False
    sql_store(services.store).engine.dispose()
    retry = client.post("/hooks/github", data=body, headers=headers)
    assert retry.status_code == 202, retry.get_data(as_text=True)
    assert len(services.store.list_builds(1000)) == stored + 1


def test_a_secret_at_the_status_length_limit_is_masked_before_it_is_cut(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the log incomplete, a status description is shortened to make room for the
    note: shortening first would cut a secret in half, and half a secret is not masked."""
    attempt = claimed_attempt(services)
    monkeypatch.setattr(type(attempt.log), "incomplete", property(lambda _self: True))
    attempt.pipeline_started(0, "build")
    # The secret straddles the cut (140 minus the note's length).
    description = "x" * 90 + REPO_SECRET + " and more text after it"
    attempt.pipeline_finished(PipelineRun("build", Result.FAILED, description))
    final = services.store.statuses_for("acme/app", "a" * 40)[-1]
    assert final.description.endswith(LOG_INCOMPLETE)
    for size in range(4, len(REPO_SECRET) + 1):
        assert REPO_SECRET[:size] not in final.description, final.description
