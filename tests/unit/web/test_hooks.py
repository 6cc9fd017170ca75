"""``POST /hooks/github`` through Flask's test client, on a real SQLite store: with the
configured ``GitHubForge`` (GitHub's headers and signatures), then with the in-memory forge
(``tests/fakes/forge.py``), which shows the intake knows only the ``Forge`` seam."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from bot.app import create_app
from bot.errors import ConfigError
from bot.forges.base import Delivery, Ignored, Ping
from bot.services import Services
from bot.settings import parse_settings
from bot.wiring import build_services
from tests.fakes.forge import FakeForge, push_event
from tests.harness.github_fake import form_body, push_payload, sign, webhook_headers

SECRET = "It's a Secret to Everybody"
SHA = "a" * 40


@pytest.fixture
def services(tmp_path: Path) -> Services:
    settings = parse_settings(
        {
            "data_dir": str(tmp_path),
            "base_url": "http://bot.test",
            "github": {"webhook_secret": SECRET},
            "repos": {
                "Acme/App": {"clone_url": "file:///nowhere"},
                "acme/tagged": {"pipelines": [{"name": "release", "branches": ["v*"]}]},
            },
        },
        {},
        base_dir=tmp_path,
    )
    return build_services(settings)


@pytest.fixture
def client(services: Services) -> FlaskClient:
    return create_app(services=services).test_client()


def post(
    client: FlaskClient,
    payload: dict | bytes,
    *,
    secret: str | None = SECRET,
    event: str = "push",
    delivery: str = "guid-1",
    content_type: str = "application/json",
) -> TestResponse:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    headers = webhook_headers(
        body, secret, event=event, delivery=delivery, content_type=content_type
    )
    return client.post("/hooks/github", data=body, headers=headers)


def answer(resp: TestResponse) -> dict[str, Any]:
    """The JSON object the bot answered with."""
    body = resp.get_json()
    assert isinstance(body, dict), resp.data
    return body


def build_count(services: Services) -> int:
    return len(services.store.list_builds(1000))


def test_signed_push_is_stored_before_202(client: FlaskClient, services: Services) -> None:
    resp = post(client, push_payload("acme/app", "refs/heads/feature/x", SHA))
    assert resp.status_code == 202, resp.json
    assert answer(resp)["url"] == f"http://bot.test/builds/{answer(resp)['build']}"
    builds = services.store.list_builds()
    attempt = builds[0].attempt
    assert builds[0].branch == "feature/x" and attempt is not None and attempt.state == "queued"
    contexts = {s.context: s.state for s in services.store.statuses_for("Acme/App", SHA)}
    assert contexts == {"wercker-bot/build": "pending", "wercker-bot/deploy": "pending"}


def test_form_encoded_body(client: FlaskClient, services: Services) -> None:
    body = form_body(push_payload("acme/app", "refs/heads/main", SHA))
    resp = post(client, body, content_type="application/x-www-form-urlencoded")
    assert resp.status_code == 202 and build_count(services) == 1


@pytest.mark.parametrize("secret", [None, "wrong secret"])
def test_unsigned_or_wrong_signature_is_401_and_stores_nothing(
    client: FlaskClient, services: Services, secret: str | None
) -> None:
    resp = post(client, push_payload("acme/app", "refs/heads/main", SHA), secret=secret)
    assert resp.status_code == 401 and "Signature" in answer(resp)["error"]
    assert build_count(services) == 0


def test_tampered_body_is_401(client: FlaskClient, services: Services) -> None:
    body = json.dumps(push_payload("acme/app", "refs/heads/main", SHA)).encode()
    headers = webhook_headers(body, SECRET)
    resp = client.post("/hooks/github", data=body.replace(b"main", b"evil"), headers=headers)
    assert resp.status_code == 401 and build_count(services) == 0


def test_oversized_body_is_413(client: FlaskClient, services: Services) -> None:
    body = b"{" + b" " * (25 * 1024 * 1024 + 10) + b"}"
    headers = {**webhook_headers(b"", SECRET), "X-Hub-Signature-256": sign(SECRET, body)}
    resp = client.post("/hooks/github", data=body, headers=headers)
    assert resp.status_code == 413 and "25 MB" in answer(resp)["error"]
    assert build_count(services) == 0


def test_malformed_json_is_400_with_reason(client: FlaskClient, services: Services) -> None:
    resp = post(client, b'{"ref": ')
    assert resp.status_code == 400 and answer(resp)["error"]
    assert "\n" not in answer(resp)["error"] and build_count(services) == 0


def test_missing_field_is_400_naming_it(client: FlaskClient) -> None:
    payload = push_payload("acme/app", "refs/heads/main", SHA)
    del payload["after"]
    resp = post(client, payload)
    assert resp.status_code == 400 and "after" in answer(resp)["error"]


def test_ping_is_200(client: FlaskClient, services: Services) -> None:
    resp = post(client, {"zen": "Keep it logically awesome.", "hook_id": 1}, event="ping")
    assert resp.status_code == 200 and build_count(services) == 0


@pytest.mark.parametrize(
    ("payload", "event", "reason"),
    [
        (push_payload("acme/app", "refs/heads/main", SHA, deleted=True), "push", "deleted"),
        (push_payload("someone/else", "refs/heads/main", SHA), "push", "not configured"),
        (
            push_payload("acme/app", "refs/heads/main", SHA, message="wip [skip ci]"),
            "push",
            "skip ci",
        ),
        ({"action": "opened"}, "issues", "not handled"),
        (push_payload("acme/tagged", "refs/heads/main", SHA), "push", "no pipeline"),
    ],
)
def test_ignored_deliveries_are_202_and_store_nothing(
    client: FlaskClient, services: Services, payload: dict, event: str, reason: str
) -> None:
    resp = post(client, payload, event=event)
    assert resp.status_code == 202 and reason in answer(resp)["ignored"]
    assert build_count(services) == 0


def test_tag_push_matches_branch_globs(client: FlaskClient, services: Services) -> None:
    resp = post(client, push_payload("acme/tagged", "refs/tags/v1.2", SHA))
    assert resp.status_code == 202 and "build" in answer(resp)
    assert services.store.list_builds()[0].git_tag == "v1.2"


def test_redelivery_while_queued_is_ignored(client: FlaskClient, services: Services) -> None:
    payload = push_payload("acme/app", "refs/heads/main", SHA)
    first = post(client, payload, delivery="same")
    again = post(client, payload, delivery="same")
    assert again.status_code == 202 and answer(again)["ignored"] == "already in progress"
    assert answer(again)["build"] == answer(first)["build"] and build_count(services) == 1


def test_server_refuses_to_start_without_secret(tmp_path: Path) -> None:
    settings = parse_settings({"data_dir": str(tmp_path)}, {}, base_dir=tmp_path)
    with pytest.raises(ConfigError, match="webhook_secret"):
        create_app(settings)


def test_pages_and_api_mask_secrets(tmp_path: Path) -> None:
    settings = parse_settings(
        {
            "data_dir": str(tmp_path),
            "github": {"webhook_secret": SECRET},
            "repos": {"acme/app": {"secrets": {"PW": "hunter2-secret"}}},
        },
        {},
        base_dir=tmp_path,
    )
    services = build_services(settings)
    client = create_app(services=services).test_client()
    resp = post(
        client, push_payload("acme/app", "refs/heads/main", SHA, message="pw hunter2-secret")
    )
    build_id = answer(resp)["build"]
    claim = services.store.claim_next("t")
    assert claim is not None
    services.store.append_log(claim.attempt_id, "leaked hunter2-secret here\n")
    for url in (f"/builds/{build_id}", f"/api/builds/{build_id}", "/api/builds", "/builds"):
        page = client.get(url)
        assert page.status_code == 200, url
        assert b"hunter2-secret" not in page.data, url
    assert client.get("/api/builds/999").status_code == 404
    assert answer(client.get("/healthz"))["ok"] is True


def test_bad_query_arguments_are_400_not_500(client: FlaskClient) -> None:
    assert client.get("/api/builds?limit=abc").status_code == 400
    assert client.get("/api/attempts/1/log?after=x").status_code == 400
    assert client.get("/api/builds?limit=0").status_code == 200


def test_secret_configured_means_signatures_are_checked_even_with_skip(tmp_path: Path) -> None:
    settings = parse_settings(
        {
            "data_dir": str(tmp_path),
            "github": {"webhook_secret": SECRET, "insecure_skip_signature": True},
            "repos": {"acme/app": {}},
        },
        {},
        base_dir=tmp_path,
    )
    client = create_app(services=build_services(settings)).test_client()
    resp = post(client, push_payload("acme/app", "refs/heads/main", SHA), secret=None)
    assert resp.status_code == 401


def test_oversized_chunked_body_is_413_not_401(services: Services) -> None:
    """Over a real server: a chunked body carries no Content-Length to check up front."""
    import threading

    import requests
    from werkzeug.serving import make_server

    body = b"{" + b" " * (25 * 1024 * 1024 + 10) + b"}"
    headers = {**webhook_headers(b"", SECRET), "X-Hub-Signature-256": sign(SECRET, body)}
    headers.pop("Content-Length", None)
    server = make_server("127.0.0.1", 0, create_app(services=services), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        chunks = (body[i : i + (1 << 20)] for i in range(0, len(body), 1 << 20))
        resp = requests.post(
            f"http://127.0.0.1:{server.server_port}/hooks/github",
            data=chunks,
            headers=headers,
            timeout=30,
        )
    finally:
        server.shutdown()
    assert resp.status_code == 413 and build_count(services) == 0


@pytest.mark.parametrize(
    "ref",
    ["refs/heads/..", "refs/heads/a\n[wercker-bot] passed", "refs/tags/v1..2", "refs/notes/a b"],
)
def test_invalid_ref_is_400_naming_it(client: FlaskClient, services: Services, ref: str) -> None:
    resp = post(client, push_payload("acme/app", ref, SHA))
    assert resp.status_code == 400
    error = answer(resp)["error"]
    assert error.startswith(f"field ref {ref!r} is not a valid git ref name: ")
    assert "\n" not in error and build_count(services) == 0


def test_payload_ancestry_orders_out_of_order_deliveries(
    client: FlaskClient, services: Services
) -> None:
    a, b, c = "a" * 40, "b" * 40, "c" * 40
    newest = post(client, push_payload("acme/app", "refs/heads/main", c, before=b), delivery="c")
    late = post(client, push_payload("acme/app", "refs/heads/main", b, before=a), delivery="b")
    assert newest.status_code == late.status_code == 202
    store = services.store
    assert store.attempt_state(answer(late)["build"], 1) == "canceled"
    assert store.attempt_state(answer(newest)["build"], 1) == "queued"
    assert store.statuses_for("Acme/App", b)[-1].description == "Superseded by ccccccc"


def test_a_forced_push_proves_nothing_about_its_before(
    client: FlaskClient, services: Services
) -> None:
    a, c = "a" * 40, "c" * 40
    old = post(client, push_payload("acme/app", "refs/heads/main", a), delivery="a")
    payload = push_payload("acme/app", "refs/heads/main", c, before=a)
    payload["forced"] = True
    forced = post(client, payload, delivery="c")
    assert services.store.attempt_state(answer(old)["build"], 1) == "queued"
    assert services.store.attempt_state(answer(forced)["build"], 1) == "queued"


def test_malformed_commits_list_is_400(client: FlaskClient, services: Services) -> None:
    payload = push_payload("acme/app", "refs/heads/main", SHA)
    payload["commits"] = "nope"
    resp = post(client, payload)
    assert resp.status_code == 400 and answer(resp)["error"] == (
        "field commits must be an array, not a string"
    )
    payload["commits"] = [42]
    resp = post(client, payload, delivery="guid-2")
    assert answer(resp)["error"] == "field commits[0] must be an object, not a number"
    assert build_count(services) == 0


# The intake on the Forge seam, with the in-memory forge ------------------------------------
# The web layer knows no forge: the same route takes whatever ``services.forge`` verifies
# and parses (here the fake's own wire format, no GitHub header anywhere).


@pytest.fixture
def fake() -> FakeForge:
    return FakeForge()


@pytest.fixture
def fake_services(tmp_path: Path, fake: FakeForge) -> Services:
    settings = parse_settings(
        {
            "data_dir": str(tmp_path),
            "base_url": "http://bot.test",
            "github": {"status_context": "ci"},
            "repos": {"acme/app": {}},
        },
        {},
        base_dir=tmp_path,
    )
    return build_services(settings, forge=fake)


def _send(
    services: Services, fake: FakeForge, event: Delivery, *, signed: bool = True
) -> TestResponse:
    client = create_app(services=services).test_client()
    body = fake.body(event)
    return client.post("/hooks/github", data=body, headers=fake.headers(body, signed=signed))


def test_a_push_the_forge_verified_and_parsed_is_stored(
    fake_services: Services, fake: FakeForge
) -> None:
    push = push_event("Acme/App", "refs/heads/feature/y", SHA, delivery_id="f-1")
    resp = _send(fake_services, fake, push)
    assert resp.status_code == 202, resp.json
    assert fake.parsed == [push]
    (build,) = fake_services.store.list_builds()
    assert (build.repo, build.branch, build.sha) == ("acme/app", "feature/y", SHA)
    # The contexts are the reporter's (``status_context`` from the settings).
    rows = fake_services.store.statuses_for("acme/app", SHA)
    assert {(r.context, r.state) for r in rows} == {
        ("ci/build", "pending"),
        ("ci/deploy", "pending"),
    }


def test_what_the_forge_does_not_verify_is_401_with_its_help_and_not_parsed(
    fake_services: Services, fake: FakeForge
) -> None:
    resp = _send(fake_services, fake, push_event(), signed=False)
    assert resp.status_code == 401 and resp.json == {"error": fake.signature_help}
    assert fake.parsed == [] and build_count(fake_services) == 0


def test_the_forges_ping_and_ignored_answers(fake_services: Services, fake: FakeForge) -> None:
    pong = _send(fake_services, fake, Ping("d-1", "h-1", zen="hello"))
    assert pong.status_code == 200 and pong.json == {"pong": "hello"}
    ignored = _send(fake_services, fake, Ignored("tag deleted", "acme/app"))
    assert ignored.status_code == 202 and ignored.json == {"ignored": "tag deleted"}
    assert build_count(fake_services) == 0


def test_the_forges_parse_errors_keep_their_status(
    fake_services: Services, fake: FakeForge
) -> None:
    client = create_app(services=fake_services).test_client()
    body = b"not json"
    headers = fake.headers(body)
    assert client.post("/hooks/github", data=body, headers=headers).status_code == 400
    headers["Content-Type"] = "text/plain"
    resp = client.post("/hooks/github", data=body, headers=headers)
    assert resp.status_code == 415 and "Content-Type" in answer(resp)["error"]
    assert build_count(fake_services) == 0


def test_an_unconfigured_repository_from_the_forge_is_ignored(
    fake_services: Services, fake: FakeForge
) -> None:
    resp = _send(fake_services, fake, push_event("someone/else"))
    assert resp.status_code == 202 and "not configured" in answer(resp)["ignored"]
    assert build_count(fake_services) == 0
