"""``bot.forges.github.forge``: ``GitHubForge``, the Forge Protocol on today's GitHub
functions and the [github] settings."""

from __future__ import annotations

import json

import pytest

from bot.errors import WebhookError
from bot.forges.base import Forge, Ping, PushEvent
from bot.forges.github import GitHubForge
from bot.settings import GitHubSettings
from tests.harness.github_fake import GitHubFake, form_body, push_payload, webhook_headers

SECRET = "forge-webhook-secret"
TOKEN = "ghs_forgeTokenValue0123"
SHA = "d" * 40


def _forge(**settings: object) -> Forge:
    forge: Forge = GitHubForge(GitHubSettings(**settings))  # type: ignore[arg-type]
    return forge


def test_verify_checks_the_signature_over_the_raw_body() -> None:
    forge = _forge(webhook_secret=SECRET)
    body = json.dumps(push_payload("acme/app", "refs/heads/main", SHA)).encode()
    headers = webhook_headers(body, SECRET)
    assert forge.verify(headers, body)
    # Header names are case-insensitive, as HTTP has them.
    assert forge.verify({k.lower(): v for k, v in headers.items()}, body)
    assert not forge.verify(headers, body + b" ")
    assert not forge.verify(webhook_headers(body, "another secret"), body)
    assert not forge.verify(webhook_headers(body, None), body)
    assert "X-Hub-Signature-256" in forge.signature_help


@pytest.mark.parametrize(
    ("secret", "skip", "unsigned_passes"),
    [("", True, True), (SECRET, True, False), ("", False, False), (SECRET, False, False)],
)
def test_an_unsigned_delivery_passes_only_when_skipping_with_no_secret(
    secret: str, skip: bool, unsigned_passes: bool
) -> None:
    forge = _forge(webhook_secret=secret, insecure_skip_signature=skip)
    assert forge.verify(webhook_headers(b"{}", None), b"{}") is unsigned_passes


def test_parse_is_parse_delivery() -> None:
    forge = _forge(webhook_secret=SECRET)
    payload = push_payload("acme/app", "refs/heads/main", SHA)
    body = form_body(payload)
    got = forge.parse(webhook_headers(body, SECRET), body, "application/x-www-form-urlencoded")
    assert isinstance(got, PushEvent) and got.sha == SHA and got.branch == "main"
    ping = json.dumps({"zen": "Design for failure.", "hook_id": 7}).encode()
    pong = forge.parse(webhook_headers(ping, SECRET, event="ping"), ping, "application/json")
    assert isinstance(pong, Ping) and pong.zen == "Design for failure."
    with pytest.raises(WebhookError) as err:
        forge.parse(webhook_headers(b"<x/>", SECRET), b"<x/>", "text/xml")
    assert err.value.status == 415


def test_can_post_needs_a_token() -> None:
    assert _forge(token=TOKEN).can_post
    assert not _forge().can_post


def test_post_status_posts_one_status_with_the_token(github_fake: GitHubFake) -> None:
    github_fake.require_token(TOKEN)
    forge = _forge(api_url=github_fake.url, token=TOKEN)
    out = forge.post_status(
        "acme/app", SHA, "success", "wb/build", "Passed", "http://bot/builds/1", attempt=1
    )
    assert out.delivered
    assert github_fake.final_states("acme/app", SHA) == {"wb/build": "success"}
    assert github_fake.violations == []
    assert TOKEN not in repr(forge)


def test_post_status_backs_off_by_attempt(github_fake: GitHubFake) -> None:
    forge = _forge(api_url=github_fake.url, token=TOKEN)
    github_fake.fail_next(1, status=502)
    out = forge.post_status("acme/app", SHA, "pending", "wb/build", "Queued", "", attempt=3)
    assert out.should_retry and out.retry_in == forge.backoff(3) == 8.0


def test_the_clone_token_is_the_configured_token_for_every_repository() -> None:
    """What git fetches with (``Forge.clone_token``): one token serves every repository;
    none configured means a public or SSH clone, never another credential."""
    forge = _forge(token=TOKEN)
    assert forge.clone_token("acme/app") == forge.clone_token("other/repo") == TOKEN
    assert _forge().clone_token("acme/app") == ""
