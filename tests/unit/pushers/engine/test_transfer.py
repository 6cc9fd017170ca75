"""``bot.pushers.engine.transfer``: ``push_image`` with a fake engine API (ECR repository
creation with boto3 faked, warnings about ``[registries]`` settings the engine cannot honour,
a push stream that never reports the manifest digest), and the engine's error text read into
registry errors with their facts."""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any, cast

import docker
import pytest
from botocore.exceptions import ClientError

from bot.engine import EngineHandle, Say
from bot.errors import (
    RegistryAuthError,
    RegistryError,
    RegistryUnavailable,
    UnknownRegistryHost,
)
from bot.logs import MemoryLog
from bot.pushers.engine import push_image
from bot.pushers.engine.transfer import engine_push_error
from bot.pushers.model import RegistryAuth, Target
from bot.pushers.registry import ecr
from bot.settings import RegistrySettings

ECR = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"


DIGEST = "sha256:" + "5e" * 32


class FakeApi:
    """Records every call in ``calls`` (shared with the fake ECR client, to check order)."""

    def __init__(self, calls: list[str], lines: list[dict[str, Any]] | None = None) -> None:
        self.calls = calls
        self.lines = lines if lines is not None else default_lines()

    def tag(self, image: str, repo: str, tag: str, force: bool = False) -> None:
        self.calls.append(f"tag {repo}:{tag}")

    def push(self, repo: str, tag: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
        self.calls.append(f"push {repo}:{tag}")
        yield from self.lines

    def remove_image(self, ref: str, **kwargs: Any) -> None:
        self.calls.append(f"rmi {ref}")


def default_lines() -> list[dict[str, Any]]:
    return [
        {"status": "The push refers to repository [x]"},
        {"status": "Pushed", "id": "abc123", "progressDetail": {}},
        {"status": "v1: digest: " + DIGEST + " size: 527"},
        {"progressDetail": {}, "aux": {"Tag": "v1", "Digest": DIGEST, "Size": 527}},
    ]


def CREDS(registry: str, auth: RegistryAuth, say: Say | None = None) -> tuple[str, str]:
    """The process's resolver, as ``bot.wiring`` hands it to the engine pusher."""
    return ("AWS", "tok")


def handle(api: FakeApi, registries: dict[str, RegistrySettings]) -> EngineHandle:
    client = cast(docker.DockerClient, SimpleNamespace(api=api))
    return EngineHandle(client, client, credentials=CREDS, registries=registries)


class FakeEcrClient:
    def __init__(self, calls: list[str], existing: set[str]) -> None:
        self.calls = calls
        self.existing = existing

    def describe_repositories(self, registryId: str, repositoryNames: list[str]) -> Any:
        self.calls.append(f"describe {registryId}/{repositoryNames[0]}")
        if repositoryNames[0] not in self.existing:
            raise ClientError(
                {"Error": {"Code": "RepositoryNotFoundException", "Message": "not found"}},
                "DescribeRepositories",
            )
        return {"repositories": [{"repositoryName": repositoryNames[0]}]}

    def create_repository(self, registryId: str, repositoryName: str) -> Any:
        self.calls.append(f"create {registryId}/{repositoryName}")
        self.existing.add(repositoryName)
        return {}


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    recorded: list[str] = []
    existing: set[str] = set()

    def client(reg: ecr.EcrRegistry, auth: RegistryAuth, endpoint_url: str | None) -> Any:
        recorded.append(f"ecr-client {reg.account} {reg.region} {endpoint_url}")
        return FakeEcrClient(recorded, existing)

    monkeypatch.setattr(ecr, "_client", client)
    return recorded


ECR_AUTH = RegistryAuth(aws_access_key="AKIAEXAMPLE", aws_secret_key="secret-key-123")


def test_engine_push_creates_a_missing_ecr_repository_first(calls: list[str]) -> None:
    registries = {
        ECR: RegistrySettings(
            host=ECR, create_repository=True, aws_endpoint_url="http://127.0.0.1:1"
        )
    }
    log = MemoryLog()
    result = push_image(
        handle(FakeApi(calls), registries),
        "sha256:img",
        Target(ECR, "team/app", ("v1",), auth=ECR_AUTH),
        log,
        CREDS,
    )
    assert result.digest == DIGEST
    assert calls[:3] == [
        "ecr-client 123456789012 eu-west-1 http://127.0.0.1:1",
        "describe 123456789012/team/app",
        "create 123456789012/team/app",
    ]
    assert calls.index("create 123456789012/team/app") < calls.index(f"push {ECR}/team/app:v1")
    assert "created ECR repository team/app in eu-west-1" in log.text
    assert "ignores" not in log.text  # nothing the engine cannot honour


def test_engine_push_leaves_ecr_alone_without_create_repository(calls: list[str]) -> None:
    registries = {ECR: RegistrySettings(host=ECR)}
    push_image(
        handle(FakeApi(calls), registries),
        "sha256:img",
        Target(ECR, "team/app", ("v1",), auth=ECR_AUTH),
        MemoryLog(),
        CREDS,
    )
    assert not [c for c in calls if c.startswith(("ecr-client", "describe", "create"))]


def test_engine_push_through_an_ecr_mirror_entry_still_creates_the_repository(
    calls: list[str],
) -> None:
    registries = {
        "127.0.0.1:5000": RegistrySettings(
            host="127.0.0.1:5000", mirror_of=ECR, create_repository=True
        )
    }
    log = MemoryLog()
    push_image(
        handle(FakeApi(calls), registries),
        "sha256:img",
        Target(ECR, "app", ("v1",), auth=ECR_AUTH),
        log,
        CREDS,
    )
    assert "create 123456789012/app" in calls
    # the engine pushes to the ECR host itself, not to the mirror
    assert f"push {ECR}/app:v1" in calls
    assert "mirror_of" in log.text and "127.0.0.1:5000" in log.text


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        (RegistrySettings(host="reg.example.com", ca_file="/etc/ca/reg.pem"), "ca_file"),
        (RegistrySettings(host="reg.example.com", insecure=True), "insecure = true"),
        (
            RegistrySettings(host="mirror.internal:5000", mirror_of="reg.example.com"),
            "mirror_of",
        ),
    ],
)
def test_engine_push_warns_about_settings_the_engine_cannot_honour(
    calls: list[str], settings: RegistrySettings, named: str
) -> None:
    log = MemoryLog()
    push_image(
        handle(FakeApi(calls), {settings.host: settings}),
        "sha256:img",
        Target("reg.example.com", "team/app", ("v1",)),
        log,
        CREDS,
    )
    warning = next(line for line in log.text.splitlines() if "ignores" in line)
    assert named in warning
    assert "reg.example.com" in warning and "Docker Engine" in warning
    assert "daemon config" in warning


def test_engine_push_does_not_warn_for_plain_settings(calls: list[str]) -> None:
    log = MemoryLog()
    settings = RegistrySettings(host="reg.example.com", username="u", password="p")
    push_image(
        handle(FakeApi(calls), {"reg.example.com": settings}),
        "sha256:img",
        Target("reg.example.com", "team/app", ("v1",)),
        log,
        CREDS,
    )
    assert "ignores" not in log.text


def test_engine_push_without_a_digest_line_fails(calls: list[str]) -> None:
    lines: list[dict[str, Any]] = [
        {"status": "The push refers to repository [reg.example.com/team/app]"},
        {"status": "Pushed", "id": "abc123", "progressDetail": {}},
        {"status": "v1: pushed"},
    ]
    with pytest.raises(RegistryError) as info:
        push_image(
            handle(FakeApi(calls, lines), {}),
            "sha256:img",
            Target("reg.example.com", "team/app", ("v1",)),
            MemoryLog(),
            CREDS,
        )
    assert "no manifest digest" in str(info.value)
    assert "reg.example.com/team/app:v1" in str(info.value)
    assert "rmi reg.example.com/team/app:v1" in calls  # the local tag is cleaned up anyway


TARGET = Target("r.example:5000", "acme/app", ("latest",))


@pytest.mark.parametrize(
    ("message", "cls", "status", "codes"),
    [
        ("denied: requested access to the resource is denied", RegistryAuthError, 403, ("DENIED",)),
        ("unauthorized: authentication required", RegistryAuthError, 401, ("UNAUTHORIZED",)),
        ("manifest invalid: manifest invalid", RegistryError, None, ("MANIFEST_INVALID",)),
        # The engine had nothing to send to a registry that asked: a 401, as on box pulls.
        ("no basic auth credentials", RegistryAuthError, 401, ("UNAUTHORIZED",)),
        (
            'Get "https://r.example:5000/v2/": dial tcp 127.0.0.1:5000: connect: '
            "connection refused",
            RegistryUnavailable,
            None,
            (),
        ),
        (
            'Get "https://r.example:5000/v2/": dial tcp: lookup r.example: no such host',
            UnknownRegistryHost,
            None,
            (),
        ),
        ("received unexpected HTTP status: 503 Service Unavailable", RegistryUnavailable, 503, ()),
    ],
)
def test_engine_push_errors_carry_facts(
    message: str, cls: type, status: int | None, codes: tuple[str, ...]
) -> None:
    err = engine_push_error(f"r.example:5000/acme/app:latest: {message}", TARGET)
    assert type(err) is cls
    assert (err.registry, err.repository, err.action) == ("r.example:5000", "acme/app", "push")
    assert err.http_status == status and err.codes == codes


class Refused(Exception):
    """What the test's ``before_tag`` raises (a fence's refusal, in the bot)."""


def test_engine_push_asks_before_tag_before_each_tag_and_stops_when_refused(
    calls: list[str],
) -> None:
    asked: list[list[str]] = []

    def before_tag() -> None:
        asked.append(list(calls))  # what the engine had been asked when the hook ran
        if len(asked) == 2:
            raise Refused

    target = Target("registry.example", "team/app", ("v1", "v2"), before_tag=before_tag)
    with pytest.raises(Refused):
        push_image(handle(FakeApi(calls), {}), "sha256:img", target, MemoryLog(), CREDS)
    repo = "registry.example/team/app"
    # Asked before v1 was made at all, and before v2 was: v2 is neither tagged nor pushed,
    # and the local tag v1 is still removed.
    assert asked == [[], [f"tag {repo}:v1", f"push {repo}:v1"]]
    assert calls == [f"tag {repo}:v1", f"push {repo}:v1", f"rmi {repo}:v1"]
