"""Credential rules end to end: gcr.io ``_json_key``, Azure service principals and Docker
Hub names, each reached through a ``mirror_of`` entry that maps the public host onto a local
htpasswd registry whose only user is the one the rule must produce."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from bot.errors import RegistryAuthError
from bot.logs import MemoryLog
from bot.pushers.credentials import RegistryCredentials
from bot.pushers.daemonless import DaemonlessPusher
from bot.pushers.model import ImageConfig, ImageSpec, LayerDir
from bot.pushers.registry.client import RetryPolicy
from bot.pushers.target import resolve_target
from bot.settings import RegistrySettings
from tests.harness.registry import RegistryServer

# short enough for bcrypt's 72-byte limit, with the newline inside it
GCR_KEY = '{"type":"service_account","key":"line1\nline2"}'


def push(
    server: RegistryServer, mirror_of: str, options: dict[str, str], tmp_path: Path
) -> tuple[str, str]:
    registries = {
        server.host: RegistrySettings(host=server.host, ca_file=server.ca_file, mirror_of=mirror_of)
    }
    log = MemoryLog()
    target = resolve_target(options, default_tag="main", registries=registries, log=log)
    src = tmp_path / "src"
    src.mkdir(exist_ok=True)
    (src / "f").write_text("x")
    result = DaemonlessPusher(
        registries,
        tmp_path / "cache",
        credentials=RegistryCredentials(registries),
        retry=RetryPolicy(attempts=2, backoff=0.05),
    ).push(ImageSpec([LayerDir(src, "/")], ImageConfig()), target, log)
    return target.repository, result.digest


def test_gcr_json_key_with_literal_backslash_n(
    registry_factory: Callable[..., RegistryServer], tmp_path: Path
) -> None:
    server = registry_factory("htpasswd", users={"_json_key": GCR_KEY})
    literal = GCR_KEY.replace("\n", "\\n")  # how the key arrives through an env var
    repo, digest = push(
        server,
        "gcr.io",
        {
            "repository": "gcr.io/my-project/app",
            "registry": "https://gcr.io",
            "username": "_json_key",
            "password": literal,
        },
        tmp_path,
    )
    assert repo == "my-project/app"
    done = server.skopeo(
        "inspect",
        "--tls-verify=false",
        "--creds",
        f"_json_key:{GCR_KEY}",
        f"docker://{server.ref(repo, 'main')}",
        creds=False,
    )
    assert done.returncode == 0 and digest in done.stdout


def test_literal_backslash_n_is_kept_off_gcr(
    registry_factory: Callable[..., RegistryServer], tmp_path: Path
) -> None:
    server = registry_factory("htpasswd", users={"_json_key": GCR_KEY})
    literal = GCR_KEY.replace("\n", "\\n")
    with pytest.raises(RegistryAuthError) as info:
        push(
            server,
            "quay.io",
            {"repository": "quay.io/acme/app", "username": "_json_key", "password": literal},
            tmp_path,
        )
    assert "line1" not in str(info.value)


def test_azure_service_principal_against_the_login_server(
    registry_factory: Callable[..., RegistryServer], tmp_path: Path
) -> None:
    server = registry_factory("htpasswd", users={"sp-client-id": "sp-Secret-value"})
    repo, digest = push(
        server,
        "acme.azurecr.io",
        {
            "repository": "team/app",
            "azure-client-id": "sp-client-id",
            "azure-client-secret": "sp-Secret-value",
            "azure-login-server": "acme.azurecr.io",
            "azure-tenant-id": "ignored",
            "username": "not-used",
            "password": "not-used",
        },
        tmp_path,
    )
    assert repo == "team/app"
    done = server.skopeo(
        "inspect",
        "--tls-verify=false",
        "--creds",
        "sp-client-id:sp-Secret-value",
        f"docker://{server.ref(repo, 'main')}",
        creds=False,
    )
    assert done.returncode == 0 and digest in done.stdout


def test_docker_hub_names_reach_a_docker_io_mirror(
    registry_factory: Callable[..., RegistryServer], tmp_path: Path
) -> None:
    server = registry_factory("htpasswd", users={"hubuser": "hub-Pa55word"})
    repo, _ = push(
        server,
        "docker.io",
        {
            "repository": "Alpine",
            "registry": "https://registry.hub.docker.com/v1",
            "username": "hubuser",
            "password": "hub-Pa55word",
        },
        tmp_path,
    )
    assert repo == "library/alpine"
    assert (
        server.skopeo(
            "inspect",
            "--tls-verify=false",
            "--creds",
            "hubuser:hub-Pa55word",
            f"docker://{server.ref(repo, 'main')}",
            creds=False,
        ).returncode
        == 0
    )
