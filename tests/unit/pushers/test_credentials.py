"""One credential resolver for box pulls and pushes, on both paths: the resolver the
composition root builds is the one the daemonless pusher's clients ask, the one the docker
runner's engine handle carries to the engine pusher, and the one box pulls present."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import docker

from bot.engine import EngineHandle, Say, auth_config
from bot.logs import MemoryLog
from bot.pushers.credentials import RegistryCredentials
from bot.pushers.daemonless import DaemonlessPusher
from bot.pushers.engine import push_image
from bot.pushers.model import RegistryAuth, Target
from bot.runners.docker.runner import DockerRunner
from bot.settings import parse_settings
from bot.wiring import build_credentials, build_pusher, build_runners

DIGEST = "sha256:" + "ab" * 32
AUTH = RegistryAuth(username="robot", password="s3cret")


class CountingResolver:
    """A ``CredentialResolver`` that answers one account and remembers who asked what."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, RegistryAuth]] = []

    def __call__(
        self, registry: str, auth: RegistryAuth, say: Say | None = None
    ) -> tuple[str, str]:
        self.asked.append((registry, auth))
        return "resolved-user", "resolved-password"


class FakeApi:
    """The engine API calls ``push_image`` makes; records the ``auth_config`` of pushes."""

    def __init__(self) -> None:
        self.auth_configs: list[dict[str, str]] = []

    def tag(self, image: str, repo: str, tag: str, force: bool = False) -> None:
        pass

    def push(self, repo: str, tag: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
        self.auth_configs.append(kwargs["auth_config"])
        yield {"progressDetail": {}, "aux": {"Tag": tag, "Digest": DIGEST, "Size": 527}}

    def remove_image(self, ref: str, **kwargs: Any) -> None:
        pass


def test_the_daemonless_pushers_clients_ask_the_resolver_they_were_given(
    tmp_path: Path,
) -> None:
    resolver = CountingResolver()
    pusher = DaemonlessPusher({}, tmp_path / "cache", credentials=resolver)
    with pusher.client("registry.test", "https", AUTH) as client:
        creds = client.auth.creds()
    assert (creds.username, creds.password) == ("resolved-user", "resolved-password")
    assert resolver.asked == [("registry.test", AUTH)]
    assert "resolved-password" in client.secrets  # masked in its messages


def test_the_engine_pusher_and_box_pulls_ask_the_resolver_the_runner_carries() -> None:
    resolver = CountingResolver()
    api = FakeApi()
    engine_client = cast(docker.DockerClient, SimpleNamespace(api=api))
    engine = EngineHandle(engine_client, engine_client, credentials=resolver)
    target = Target("registry.test", "team/app", ("v1",), auth=AUTH)

    push_image(engine, "sha256:" + "cd" * 32, target, MemoryLog(), resolver)
    pull = auth_config("registry.test", AUTH, engine.credentials)  # what a box pull sends

    assert resolver.asked == [("registry.test", AUTH), ("registry.test", AUTH)]
    expected = {
        "username": "resolved-user",
        "password": "resolved-password",
        "serveraddress": "registry.test",
    }
    assert api.auth_configs == [expected]
    assert pull == expected


def test_the_composition_root_hands_one_resolver_to_the_pusher_and_the_runner(
    tmp_path: Path,
) -> None:
    settings = parse_settings(
        {"data_dir": str(tmp_path / "data"), "github": {"webhook_secret": "x" * 16}},
        {},
        base_dir=tmp_path,
    )
    credentials = build_credentials(settings)
    assert isinstance(credentials, RegistryCredentials)
    pusher = build_pusher(settings, credentials)
    runners = build_runners(settings, credentials)
    assert pusher.credentials is credentials
    assert runners.credentials is credentials
    runner = DockerRunner(None, credentials=runners.credentials)
    assert runner.credentials is credentials
