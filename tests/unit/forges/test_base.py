"""The ``Forge`` contract (``bot.forges.base``), held to by both implementations the tests
use: ``GitHubForge`` against the recording GitHub fake, and the in-memory ``FakeForge``. What
the outbox and the intake rely on is checked once for both, so the fake stays honest."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from bot.forges.base import Forge
from bot.forges.github import GitHubForge
from bot.settings import GitHubSettings
from tests.fakes.forge import FakeForge
from tests.harness.github_fake import GitHubFake, webhook_headers

SECRET = "contract-secret"
SHA = "e" * 40
Signer = Callable[[bytes], dict[str, str]]


@pytest.fixture(params=["github", "fake"])
def forge_and_signer(
    request: pytest.FixtureRequest, github_fake: GitHubFake
) -> tuple[Forge, Signer]:
    if request.param == "github":
        settings = GitHubSettings(api_url=github_fake.url, token="t", webhook_secret=SECRET)
        return GitHubForge(settings), lambda body: webhook_headers(body, SECRET)
    fake = FakeForge(secret=SECRET)
    return fake, fake.headers


def test_verify_takes_the_signed_body_and_nothing_else(
    forge_and_signer: tuple[Forge, Signer],
) -> None:
    forge, signed = forge_and_signer
    body = b'{"zen": "x"}'
    assert forge.verify(signed(body), body)
    assert not forge.verify(signed(body), body + b"\n")
    assert not forge.verify({"Content-Type": "application/json"}, body)
    assert forge.signature_help


def test_post_status_delivers_a_good_status(forge_and_signer: tuple[Forge, Signer]) -> None:
    forge, _ = forge_and_signer
    out = forge.post_status("acme/app", SHA, "pending", "wb/build", "Queued", "", attempt=1)
    assert out.delivered and forge.can_post


@pytest.mark.parametrize(
    ("state", "description"), [("running", "Queued"), ("pending", "x" * 141)]
)
def test_arguments_the_contract_rules_out_fail_for_good(
    forge_and_signer: tuple[Forge, Signer], state: str, description: str
) -> None:
    forge, _ = forge_and_signer
    out = forge.post_status("acme/app", SHA, state, "wb/build", description, "", attempt=1)
    assert out.permanent and out.reason


def test_backoff_grows_with_the_attempt(forge_and_signer: tuple[Forge, Signer]) -> None:
    forge, _ = forge_and_signer
    assert 0 < forge.backoff(1) < forge.backoff(2) < forge.backoff(3)
