"""``bot.forges.github.delivery``: parse_delivery against GitHub's own example payloads
and against broken ones."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from bot.errors import WebhookError
from bot.forges.github import Ignored, Ping, PushEvent, parse_delivery, verify_signature
from tests.harness.github_fake import form_body, push_payload, sign, webhook_headers
from tests.harness.paths import GITHUB_DATA, need_shared

PAYLOADS = GITHUB_DATA / "payloads"
JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
COMMIT = "6113728f27ae82c7b1a177c8d03f9e96e0adf246"
SHA = "c" * 40
TAG_OBJECT = "d" * 40

# Every example GitHub ships (../shared/github/payloads) and what it must become.
EXPECTED: dict[str, Any] = {
    "push/1.payload.json": Ignored("tag deleted", "Codertocat/Hello-World"),
    "push/payload.json": Ignored("tag deleted", "Codertocat/Hello-World"),
    "push/with-installation.payload.json": Ignored("tag deleted", "Codertocat/Hello-World"),
    "push/with-organization.payload.json": Ignored("tag deleted", "Codertocat/Hello-World"),
    "push/docs-tag-created.payload.json": ("refs/tags/simple-tag", "", "simple-tag"),
    "push/with-new-branch.payload.json": ("refs/heads/master", "master", ""),
    "push/with-no-username-committer.payload.json": ("refs/heads/master", "master", ""),
    "ping/payload.json": Ping("guid-1", "109948940", "Anything added dilutes everything else."),
    "ping/with-app_id.payload.json": Ping(
        "guid-1", "109948940", "Anything added dilutes everything else."
    ),
    "ping/with-organization.payload.json": Ping(
        "guid-1", "109948940", "Anything added dilutes everything else."
    ),
    "status/payload.json": Ignored("event status is not handled"),
    "status/with-author-committer-null.payload.json": Ignored("event status is not handled"),
    "status/with-installation.payload.json": Ignored("event status is not handled"),
}
# GitHub App events (check runs and suites, installations) are not handled in token mode.
_APP_EXAMPLES = {
    "check_run": (
        "completed.1",
        "completed",
        "completed.with-organization",
        "created",
        "created.with-organization",
        "requested_action",
        "rerequested",
        "rerequested.with-organization",
    ),
    "check_suite": (
        "completed.1",
        "completed",
        "completed.with-organization",
        "requested",
        "requested.with-organization",
        "rerequested",
        "rerequested.with-organization",
    ),
    "installation": ("created", "created.with-requester", "deleted"),
    "installation_repositories": ("added", "removed"),
}
for _event, _names in _APP_EXAMPLES.items():
    for _name in _names:
        EXPECTED[f"{_event}/{_name}.payload.json"] = Ignored(f"event {_event} is not handled")
EXPECTED["check_suite/requested.payload.with-email-with-special-characters.json"] = Ignored(
    "event check_suite is not handled"
)


def headers(event: str = "push", **extra: str) -> dict[str, str]:
    return {"X-GitHub-Event": event, "X-GitHub-Delivery": "guid-1", **extra}


def body_of(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload).encode()


def reason_of(exc: pytest.ExceptionInfo[WebhookError]) -> str:
    message = str(exc.value)
    assert "\n" not in message, "reasons are one line"
    return message


def test_every_shipped_example_is_covered() -> None:
    need_shared(PAYLOADS)
    shipped = {str(p.relative_to(PAYLOADS)) for p in PAYLOADS.glob("*/*.json")}
    assert shipped == set(EXPECTED), "a new GitHub example needs an expectation here"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_real_payload_parses_to_the_right_type(name: str) -> None:
    path = need_shared(PAYLOADS / name)
    event = name.split("/")[0]
    got = parse_delivery(headers(event), path.read_bytes(), JSON)
    expected = EXPECTED[name]
    if isinstance(expected, tuple):
        ref, branch, tag = expected
        assert got == PushEvent(
            delivery_id="guid-1",
            hook_id="",
            repo_full_name="Codertocat/Hello-World",
            ref=ref,
            branch=branch,
            tag=tag,
            sha=COMMIT,
            before="0" * 40,
            head_message=json.loads(path.read_text())["head_commit"]["message"],
            pusher="Codertocat",
            html_url="https://github.com/Codertocat/Hello-World",
            private=False,
        )
    else:
        assert got == expected


@pytest.mark.parametrize("name", sorted(n for n in EXPECTED if not n.startswith("status/")))
def test_form_encoded_delivery_parses_like_json_and_is_signed_as_sent(name: str) -> None:
    path = need_shared(PAYLOADS / name)
    payload = json.loads(path.read_text())
    body = form_body(payload)
    hdrs = webhook_headers(body, "topsecret", event=name.split("/")[0], delivery="guid-1")
    assert verify_signature("topsecret", body, hdrs["X-Hub-Signature-256"])
    assert not verify_signature("topsecret", body_of(payload), hdrs["X-Hub-Signature-256"])
    got = parse_delivery(hdrs, body, FORM)
    assert got == parse_delivery(hdrs, path.read_bytes(), JSON)
    expected = EXPECTED[name]
    assert type(got) is (PushEvent if isinstance(expected, tuple) else type(expected))


def test_headers_are_case_insensitive() -> None:
    body = body_of(push_payload("acme/app", "refs/heads/main", SHA))
    hdrs = {"x-github-event": "push", "X-GITHUB-DELIVERY": "g-2", "x-github-hook-id": "42"}
    got = parse_delivery(hdrs, body, "Application/JSON; charset=utf-8")
    assert isinstance(got, PushEvent)
    assert (got.delivery_id, got.hook_id) == ("g-2", "42")
    assert got.dedupe_key == ("42", "g-2")
    # The OpenAPI spelling of the same headers.
    hdrs = {"X-Github-Event": "push", "X-Github-Delivery": "g-3", "X-Github-Hook-Id": "7"}
    got = parse_delivery(hdrs, body, JSON)
    assert isinstance(got, PushEvent)
    assert got.dedupe_key == ("7", "g-3")


def test_missing_hook_id_is_empty() -> None:
    got = parse_delivery(headers(), body_of(push_payload("acme/app", "refs/heads/a", SHA)), JSON)
    assert isinstance(got, PushEvent)
    assert got.hook_id == ""


def test_ordinary_branch_update_derived_from_new_branch_example() -> None:
    # Derived fixture: GitHub ships no ordinary update; push_payload re-aims with-new-branch.
    payload = push_payload(
        "Acme/App", "refs/heads/feature/login", SHA, before="b" * 40, message="Fix it\n\nbody"
    )
    payload["repository"]["private"] = True
    got = parse_delivery(headers(), body_of(payload), JSON)
    assert got == PushEvent(
        delivery_id="guid-1",
        hook_id="",
        repo_full_name="Acme/App",
        ref="refs/heads/feature/login",
        branch="feature/login",
        tag="",
        sha=SHA,
        before="b" * 40,
        head_message="Fix it\n\nbody",
        pusher="Codertocat",
        html_url="https://github.com/Acme/App",
        private=True,
    )


def test_annotated_tag_uses_head_commit_not_tag_object() -> None:
    payload = push_payload("acme/app", "refs/tags/v1.0", SHA, tag_object=TAG_OBJECT)
    assert payload["after"] == TAG_OBJECT
    got = parse_delivery(headers(), body_of(payload), JSON)
    assert isinstance(got, PushEvent)
    assert (got.tag, got.branch, got.sha) == ("v1.0", "", SHA)


def test_lightweight_tag_without_head_commit_uses_after() -> None:
    payload = push_payload("acme/app", "refs/tags/v2", SHA)
    payload["head_commit"] = None
    got = parse_delivery(headers(), body_of(payload), JSON)
    assert isinstance(got, PushEvent)
    assert (got.sha, got.head_message) == (SHA, "")


def test_branch_push_uses_after() -> None:
    payload = push_payload("acme/app", "refs/heads/main", SHA)
    got = parse_delivery(headers(), body_of(payload), JSON)
    assert isinstance(got, PushEvent)
    assert got.sha == payload["after"] == SHA


def test_branch_deletion_is_ignored() -> None:
    payload = push_payload("acme/app", "refs/heads/old", SHA, deleted=True)
    assert parse_delivery(headers(), body_of(payload), JSON) == Ignored(
        "branch deleted", "acme/app"
    )


def test_zero_after_counts_as_deletion_even_without_the_flag() -> None:
    payload = push_payload("acme/app", "refs/heads/old", SHA, deleted=True)
    del payload["deleted"]
    assert parse_delivery(headers(), body_of(payload), JSON) == Ignored(
        "branch deleted", "acme/app"
    )


@pytest.mark.parametrize(
    "message",
    ["Docs only [skip ci]", "[ci skip] typo", "Tidy\n\nNothing to build [Skip CI]"],
)
def test_skip_ci_is_ignored(message: str) -> None:
    payload = push_payload("acme/app", "refs/heads/main", SHA, message=message)
    assert parse_delivery(headers(), body_of(payload), JSON) == Ignored("skip ci", "acme/app")


def test_skip_ci_needs_the_brackets() -> None:
    payload = push_payload("acme/app", "refs/heads/main", SHA, message="we skip ci sometimes")
    assert isinstance(parse_delivery(headers(), body_of(payload), JSON), PushEvent)


def test_other_refs_are_ignored() -> None:
    payload = push_payload("acme/app", "refs/notes/commits", SHA)
    got = parse_delivery(headers(), body_of(payload), JSON)
    assert got == Ignored("ref refs/notes/commits is not a branch or tag", "acme/app")


def test_other_events_are_ignored_without_reading_the_body() -> None:
    assert parse_delivery(headers("issues"), b"not json at all", JSON) == Ignored(
        "event issues is not handled"
    )


def test_credentials_in_html_url_are_stripped() -> None:
    payload = push_payload("acme/app", "refs/heads/main", SHA)
    payload["repository"]["html_url"] = "https://bob:ghp_leaky@git.example.com/acme/app"
    got = parse_delivery(headers(), body_of(payload), JSON)
    assert isinstance(got, PushEvent)
    assert got.html_url == "https://git.example.com/acme/app"


def test_push_event_exposes_no_clone_url() -> None:
    names = {f.name for f in dataclasses.fields(PushEvent)}
    assert names == {
        "delivery_id",
        "hook_id",
        "repo_full_name",
        "ref",
        "branch",
        "tag",
        "sha",
        "before",
        "head_message",
        "pusher",
        "html_url",
        "private",
        "commits",
        "forced",
    }
    payload = push_payload("acme/app", "refs/heads/main", SHA)
    payload["repository"]["clone_url"] = "http://169.254.169.254/evil.git"
    got = parse_delivery(headers(), body_of(payload), JSON)
    assert "169.254" not in repr(got)


def test_pusher_falls_back_to_sender_login() -> None:
    payload = push_payload("acme/app", "refs/heads/main", SHA)
    del payload["pusher"]
    got = parse_delivery(headers(), body_of(payload), JSON)
    assert isinstance(got, PushEvent)
    assert got.pusher == payload["sender"]["login"]


def test_content_type_missing_is_sniffed() -> None:
    payload = push_payload("acme/app", "refs/heads/main", SHA)
    assert isinstance(parse_delivery(headers(), form_body(payload), ""), PushEvent)
    assert isinstance(parse_delivery(headers(), body_of(payload), ""), PushEvent)


# ---------------------------------------------------------------- malformed → 400


def _without(path: str) -> bytes:
    payload = push_payload("acme/app", "refs/heads/main", SHA)
    *parents, last = path.split(".")
    target = payload
    for key in parents:
        target = target[key]
    del target[last]
    return body_of(payload)


def _with(path: str, value: Any) -> bytes:
    payload = push_payload("acme/app", "refs/heads/main", SHA)
    *parents, last = path.split(".")
    target = payload
    for key in parents:
        target = target[key]
    target[last] = value
    return body_of(payload)


@pytest.mark.parametrize(
    ("body", "content_type", "needle"),
    [
        (b"{not json", JSON, "not valid JSON"),
        (b"", JSON, "not valid JSON"),
        (b"[1, 2]", JSON, "must be a JSON object, not an array"),
        (b"\xff\xfe{}", JSON, "not UTF-8"),
        (b"foo=bar", FORM, "no 'payload' field"),
        (b"payload=%7Bbroken", FORM, "not valid JSON"),
        (_without("ref"), JSON, "missing field ref"),
        (_without("after"), JSON, "missing field after"),
        (_without("before"), JSON, "missing field before"),
        (_without("repository"), JSON, "missing field repository"),
        (_without("repository.full_name"), JSON, "missing field repository.full_name"),
        (_without("repository.html_url"), JSON, "missing field repository.html_url"),
        (_without("head_commit.message"), JSON, "missing field head_commit.message"),
        (_with("ref", 42), JSON, "field ref must be a string, not a number"),
        (_with("repository", "acme/app"), JSON, "field repository must be an object"),
        (_with("repository.full_name", "acme"), JSON, "repository.full_name must be owner/name"),
        (_with("repository.private", "no"), JSON, "field repository.private must be a boolean"),
        (_with("deleted", "yes"), JSON, "field deleted must be a boolean"),
        (_with("head_commit", "abc"), JSON, "field head_commit must be an object or null"),
        (_with("after", "main"), JSON, "field after must be a 40-character hex SHA"),
        (_with("ref", "refs/heads/"), JSON, "field ref has no name"),
    ],
)
def test_malformed_push_is_400_with_a_reason(body: bytes, content_type: str, needle: str) -> None:
    with pytest.raises(WebhookError) as exc:
        parse_delivery(headers(), body, content_type)
    assert exc.value.status == 400
    assert needle in reason_of(exc)


def test_annotated_tag_with_bad_head_commit_id_names_that_field() -> None:
    payload = push_payload("acme/app", "refs/tags/v1", SHA, tag_object=TAG_OBJECT)
    payload["head_commit"]["id"] = "HEAD"
    with pytest.raises(WebhookError) as exc:
        parse_delivery(headers(), body_of(payload), JSON)
    assert "head_commit.id" in reason_of(exc)


def test_missing_event_header_is_400() -> None:
    with pytest.raises(WebhookError) as exc:
        parse_delivery({"X-GitHub-Delivery": "g"}, b"{}", JSON)
    assert exc.value.status == 400
    assert "X-GitHub-Event" in reason_of(exc)


def test_push_without_delivery_header_is_400() -> None:
    body = body_of(push_payload("acme/app", "refs/heads/main", SHA))
    with pytest.raises(WebhookError) as exc:
        parse_delivery({"X-GitHub-Event": "push"}, body, JSON)
    assert exc.value.status == 400
    assert "X-GitHub-Delivery" in reason_of(exc)


def test_unsupported_content_type_is_415() -> None:
    with pytest.raises(WebhookError) as exc:
        parse_delivery(headers(), b"<xml/>", "text/xml")
    assert exc.value.status == 415


def test_webhook_headers_helper_signs_the_body() -> None:
    body = body_of(push_payload("acme/app", "refs/heads/main", SHA))
    hdrs = webhook_headers(body, "s3cret")
    assert hdrs["X-Hub-Signature-256"] == sign("s3cret", body)
    assert isinstance(parse_delivery(hdrs, body, hdrs["Content-Type"]), PushEvent)


def test_push_payload_without_shared_uses_minimal_dict(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import tests.harness.github_fake as fake_module

    monkeypatch.setattr(fake_module, "PUSH_EXAMPLE", tmp_path / "absent.json")
    payload = push_payload("acme/app", "refs/heads/main", SHA)
    got = parse_delivery(headers(), body_of(payload), JSON)
    assert isinstance(got, PushEvent)
    assert (got.repo_full_name, got.branch, got.sha) == ("acme/app", "main", SHA)


def test_absurdly_nested_json_is_400_not_a_crash() -> None:
    with pytest.raises(WebhookError) as exc:
        parse_delivery(headers(), b"[" * 200_000 + b"]" * 200_000, JSON)
    assert exc.value.status == 400


def test_reasons_stay_short_whatever_the_payload_holds() -> None:
    with pytest.raises(WebhookError) as exc:
        parse_delivery(headers(), _with("after", "x\n" * 50_000), JSON)
    assert len(reason_of(exc)) < 200
