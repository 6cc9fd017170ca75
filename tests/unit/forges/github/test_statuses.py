"""``bot.forges.github.statuses``: StatusClient against the recording GitHub fake: one
attempt, one outcome."""

from __future__ import annotations

import time

import pytest
import requests

from bot.forges.github import PostOutcome, StatusClient
from bot.settings import GitHubSettings
from tests.harness.github_fake import GitHubFake

TOKEN = "ghp_R4nd0mT0kenValue0123456789abcdefXYZ"
REPO = "acme/app"
SHA = "3f2a" + "0" * 36
CONTEXT = "wercker-bot/build"
TARGET = "http://bot.example.com/builds/7"


@pytest.fixture
def client(github_fake: GitHubFake) -> StatusClient:
    github_fake.require_token(TOKEN)
    return StatusClient.from_settings(GitHubSettings(api_url=github_fake.url, token=TOKEN))


def post(client: StatusClient, state: str = "pending", **kw: object) -> PostOutcome:
    args: dict[str, object] = {
        "repo_full_name": REPO,
        "sha": SHA,
        "state": state,
        "context": CONTEXT,
        "description": "Queued",
        "target_url": TARGET,
    }
    args.update(kw)
    return client.post(**args)  # type: ignore[arg-type]


def assert_no_token(out: PostOutcome) -> None:
    assert TOKEN not in out.reason
    assert TOKEN not in repr(out)


def test_delivered_with_githubs_headers(client: StatusClient, github_fake: GitHubFake) -> None:
    out = post(client)
    assert out.delivered
    assert out.http_status == 201
    assert github_fake.statuses(REPO, SHA) == [
        {"state": "pending", "context": CONTEXT, "description": "Queued", "target_url": TARGET}
    ]
    sent = github_fake.requests[-1]
    assert sent.path == f"/repos/acme/app/statuses/{SHA}"
    assert sent.headers["accept"] == "application/vnd.github+json"
    assert sent.headers["x-github-api-version"] == "2022-11-28"
    assert sent.headers["authorization"] == f"Bearer {TOKEN}"
    assert github_fake.violations == []


def test_states_in_order_and_final_state_per_context(
    client: StatusClient, github_fake: GitHubFake
) -> None:
    assert post(client, "pending").delivered
    assert post(client, "pending", context="wercker-bot/deploy").delivered
    assert post(client, "success", description="Pushed acme/app:main in 3s").delivered
    assert post(client, "error", context="wercker-bot/deploy", description="Canceled").delivered
    assert [s["state"] for s in github_fake.statuses(REPO, SHA)] == [
        "pending",
        "pending",
        "success",
        "error",
    ]
    assert github_fake.final_states(REPO, SHA) == {
        "wercker-bot/build": "success",
        "wercker-bot/deploy": "error",
    }
    assert github_fake.violations == []


def test_ghes_base_url_with_api_v3_prefix() -> None:
    # GHES serves the same routes under /api/v3; the path prefix must survive.
    client = StatusClient("https://ghe.example.com/api/v3/", TOKEN)
    assert client.status_url("acme/app", SHA) == (
        f"https://ghe.example.com/api/v3/repos/acme/app/statuses/{SHA}"
    )


def test_a_description_over_140_is_refused_without_a_request(
    client: StatusClient, github_fake: GitHubFake
) -> None:
    """The reporter cuts descriptions, in one place; the client does not cut them again
    (tests/unit/test_reporter.py: a long description reaches GitHub cut to 140)."""
    out = post(client, "failure", description="Step 'x' failed: " + "e" * 300)
    assert out.permanent and "317 characters, over GitHub's 140" in out.reason
    assert github_fake.requests == []
    assert post(client, "failure", description="🚀" * 70).delivered  # 140 UTF-16 units
    (body,) = github_fake.statuses(REPO, SHA)
    assert body["description"] == "🚀" * 70
    assert github_fake.violations == []


def test_empty_target_url_is_omitted(client: StatusClient, github_fake: GitHubFake) -> None:
    assert post(client, target_url="").delivered
    assert "target_url" not in github_fake.statuses(REPO, SHA)[0]


def test_503_is_retried_with_backoff(client: StatusClient, github_fake: GitHubFake) -> None:
    github_fake.fail_next(1, status=503)
    out = post(client, attempt=3)
    assert out.should_retry
    assert (out.http_status, out.retry_in) == (503, 8.0)
    assert github_fake.statuses(REPO, SHA) == []
    assert post(client).delivered  # the fake is healthy again


def test_429_retry_after_is_honoured(client: StatusClient, github_fake: GitHubFake) -> None:
    github_fake.rate_limit(1, status=429, retry_after=37)
    before = time.time()
    out = post(client)
    assert out.should_retry
    assert out.retry_in == 37.0
    assert out.retry_at is not None and before + 37 <= out.retry_at <= time.time() + 37
    assert_no_token(out)


def test_403_with_spent_primary_limit_waits_for_reset(
    client: StatusClient, github_fake: GitHubFake
) -> None:
    github_fake.rate_limit(1, status=403, reset_in=120)
    out = post(client)
    assert out.should_retry and out.http_status == 403
    assert out.retry_at is not None
    # The fake's reset is whole epoch seconds; the client waits one second past it.
    assert abs(out.retry_at - (time.time() + 121)) < 3
    assert "rate limit" in out.reason


def test_secondary_rate_limit_waits_at_least_a_minute(
    client: StatusClient, github_fake: GitHubFake
) -> None:
    github_fake.rate_limit(1, status=403)
    out = post(client)
    assert out.should_retry
    assert out.retry_in is not None and out.retry_in >= 60


def test_422_no_commit_is_permanent(client: StatusClient, github_fake: GitHubFake) -> None:
    github_fake.missing_commit(SHA)
    out = post(client)
    assert out.permanent
    assert out.http_status == 422
    assert f"No commit found for SHA: {SHA}" in out.reason
    assert_no_token(out)


def test_401_bad_token_is_permanent_and_never_shows_the_token(github_fake: GitHubFake) -> None:
    github_fake.require_token("the-right-one")
    client = StatusClient(github_fake.url, TOKEN)
    out = post(client)
    assert out.permanent and out.http_status == 401
    assert "Bad credentials" in out.reason
    assert_no_token(out)
    assert TOKEN not in repr(client)


def test_404_is_permanent(client: StatusClient, github_fake: GitHubFake) -> None:
    github_fake.fail_next(1, status=404, body={"message": "Not Found"})
    out = post(client)
    assert out.permanent and out.http_status == 404


def test_echoed_token_is_masked_in_the_reason(
    client: StatusClient, github_fake: GitHubFake
) -> None:
    github_fake.fail_next(1, status=422, body={"message": f"token {TOKEN} is weird"})
    out = post(client)
    assert out.permanent
    assert "****" in out.reason
    assert_no_token(out)


def test_connection_error_is_retried(client: StatusClient, github_fake: GitHubFake) -> None:
    github_fake.down()
    out = post(client, attempt=2)
    assert out.should_retry
    assert out.http_status is None and out.retry_in == 4.0
    assert_no_token(out)
    github_fake.up()
    assert post(client).delivered
    assert github_fake.final_states(REPO, SHA) == {CONTEXT: "pending"}


def test_refused_connection_is_retried() -> None:
    client = StatusClient("http://127.0.0.1:9", TOKEN)  # discard port: nothing listens
    out = post(client)
    assert out.should_retry
    assert out.http_status is None
    assert TOKEN not in out.reason


def test_read_timeout_is_retried(github_fake: GitHubFake, monkeypatch: pytest.MonkeyPatch) -> None:
    session = requests.Session()

    def slow(*args: object, **kwargs: object) -> requests.Response:
        raise requests.ReadTimeout("read timed out (read timeout=15)")

    monkeypatch.setattr(session, "post", slow)
    out = StatusClient(github_fake.url, TOKEN, session=session).post(
        REPO, SHA, "pending", CONTEXT, "Queued", TARGET
    )
    assert out.should_retry


def test_timeouts_are_connect_5_read_15(github_fake: GitHubFake) -> None:
    seen: dict[str, object] = {}
    session = requests.Session()
    real = session.post

    def spy(*args: object, **kwargs: object) -> requests.Response:
        seen.update(kwargs)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    session.post = spy  # type: ignore[method-assign]
    StatusClient(github_fake.url, TOKEN, session=session).post(
        REPO, SHA, "pending", CONTEXT, "Queued", TARGET
    )
    assert seen["timeout"] == (5.0, 15.0)


@pytest.mark.parametrize(
    ("kw", "needle"),
    [
        ({"sha": "main"}, "40-character"),
        ({"sha": "HEAD"}, "40-character"),
        ({"state": "ok"}, "state must be one of"),
        ({"repo_full_name": "acme"}, "owner/name"),
    ],
)
def test_bad_arguments_fail_without_a_request(
    client: StatusClient, github_fake: GitHubFake, kw: dict[str, str], needle: str
) -> None:
    out = post(client, **kw)
    assert out.permanent
    assert needle in out.reason
    assert github_fake.requests == []


def test_credentials_in_api_url_never_reach_a_reason() -> None:
    client = StatusClient("http://proxyuser:proxy-pass-123@127.0.0.1:9", TOKEN)
    out = post(client)
    assert out.should_retry
    assert "proxy-pass-123" not in out.reason
    assert "proxy-pass-123" not in repr(client)


def test_without_attempt_the_backoff_grows_over_an_outage(
    client: StatusClient, github_fake: GitHubFake
) -> None:
    github_fake.fail_next(3, status=502)
    delays = [post(client).retry_in for _ in range(3)]
    assert delays == [2.0, 4.0, 8.0]
    assert post(client).delivered
    github_fake.fail_next(1, status=502)
    assert post(client).retry_in == 2.0  # a success ends the streak
