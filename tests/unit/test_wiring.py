"""The composition root: what it builds from the settings, and that the rest uses it."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from bot.errors import ConfigError
from bot.pushers.credentials import RegistryCredentials
from bot.pushers.daemonless import DaemonlessPusher
from bot.pushers.engine import EnginePusher
from bot.settings import Settings, parse_settings
from bot.wiring import build_services
from bot.worker import WorkerPool
from tests.fakes.forge import FakeForge
from tests.harness.builds import new_push
from tests.harness.github_fake import GitHubFake, push_payload, webhook_headers

SECRET = "wiring-webhook-secret"
TOKEN = "ghs_wiringTokenValue"
SHA = "c" * 40


def test_data_dir_is_private_to_the_bot(tmp_path: Path) -> None:
    """Box containers write the bind-mounted cache under data_dir as root: other host users
    must not reach what a build leaves there (setuid files, device nodes)."""
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    settings = parse_settings(
        {"data_dir": str(data), "github": {"webhook_secret": "x" * 16}}, {}, base_dir=tmp_path
    )
    build_services(settings)
    assert stat.S_IMODE(data.stat().st_mode) == 0o700


def _settings(tmp_path: Path, **github: object) -> Settings:
    return parse_settings(
        {"data_dir": str(tmp_path / "data"), "github": {"webhook_secret": SECRET, **github}},
        {},
        base_dir=tmp_path,
    )


def test_the_forge_is_built_from_the_settings_and_verifies_with_their_secret(
    tmp_path: Path,
) -> None:
    services = build_services(_settings(tmp_path))
    body = json.dumps(push_payload("acme/app", "refs/heads/main", SHA)).encode()
    assert services.forge.verify(webhook_headers(body, SECRET), body)
    assert not services.forge.verify(webhook_headers(body, "a wrong secret"), body)
    assert not services.forge.verify(webhook_headers(body, None), body)
    # The outbox posts through that same forge.
    assert services.status_delivery.forge is services.forge


def test_services_carry_an_engine_pusher_with_the_one_credential_resolver(
    tmp_path: Path,
) -> None:
    """Both pushers come from the composition root and present the same resolver: no
    step builds a pusher, and no pusher makes a second resolver of its own."""
    services = build_services(_settings(tmp_path))
    engine_pusher = services.engine_pusher
    assert isinstance(engine_pusher, EnginePusher)
    assert isinstance(services.pusher, DaemonlessPusher)
    assert isinstance(services.pusher.credentials, RegistryCredentials)
    assert engine_pusher.credentials is services.pusher.credentials
    assert services.runners().credentials is services.pusher.credentials


def test_skipping_signatures_needs_the_flag_and_no_secret(tmp_path: Path) -> None:
    body = b"{}"
    unsigned = webhook_headers(body, None)
    skip = parse_settings(
        {"data_dir": str(tmp_path / "a"), "github": {"insecure_skip_signature": True}},
        {},
        base_dir=tmp_path,
    )
    assert build_services(skip).forge.verify(unsigned, body)
    both = _settings(tmp_path, insecure_skip_signature=True)
    assert not build_services(both).forge.verify(unsigned, body)
    neither = parse_settings({"data_dir": str(tmp_path / "b")}, {}, base_dir=tmp_path)
    assert not build_services(neither).forge.verify(unsigned, body)


def test_the_worker_pool_posts_through_the_services_forge(tmp_path: Path) -> None:
    fake = FakeForge()
    services = build_services(_settings(tmp_path, status_context="ci"), forge=fake)
    services.store.record_push(new_push(sha=SHA))
    pool = WorkerPool(services, 0)
    pool.start()
    try:
        posted = fake.wait_for_posts(1)
    finally:
        pool.stop()
    # The context is the configured one (the reporter's): a push carries none.
    assert [(p.sha, p.context, p.state, p.description) for p in posted] == [
        (SHA, "ci/build", "pending", "Queued")
    ]
    assert any(t.name == "statuses" for t in pool.threads)


def test_no_status_thread_when_the_forge_cannot_post(tmp_path: Path) -> None:
    services = build_services(_settings(tmp_path), forge=FakeForge(can_post=False))
    pool = WorkerPool(services, 0)
    pool.start()
    pool.stop()
    assert [t.name for t in pool.threads] == ["recovery"]


def test_the_configured_github_forge_posts_to_the_configured_api(
    tmp_path: Path, github_fake: GitHubFake
) -> None:
    """Settings → GitHubForge → outbox thread → GitHub's API, with the configured token."""
    settings = _settings(tmp_path, api_url=github_fake.url, token=TOKEN)
    github_fake.require_token(TOKEN)
    services = build_services(settings)
    services.store.record_push(new_push(sha=SHA))
    pool = WorkerPool(services, 0)
    pool.start()
    try:
        github_fake.wait_for(lambda: github_fake.statuses("acme/app", SHA))
    finally:
        pool.stop()
    assert github_fake.final_states("acme/app", SHA) == {"wercker-bot/build": "pending"}
    assert github_fake.violations == []



def test_a_sandbox_exposing_the_data_dir_stops_startup(tmp_path: Path) -> None:
    """The check runs when the process starts, not first when a build needs a sandbox: a
    bad config never lets a worker take work it would then error."""
    data = tmp_path / "data"
    settings = parse_settings(
        {
            "data_dir": str(data),
            "github": {"webhook_secret": SECRET},
            "runner": {"kind": "local", "sandbox_expose": [str(tmp_path)]},
        },
        {},
        base_dir=tmp_path,
    )
    with pytest.raises(ConfigError, match="only the bot may read") as err:
        build_services(settings)
    assert err.value.key == "runner.sandbox_expose"
    assert not (data / "wercker-bot.sqlite3").exists()
