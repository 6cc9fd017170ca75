"""A box in a registry that needs a login is fetched with the box's own credentials
(``box: {id, username, password}``), or the registry's config defaults."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import requests

from tests.harness.registry import RegistryServer
from tests.integration.test_scenarios import run_scenario

V2S2 = "application/vnd.docker.distribution.manifest.v2+json"


def _layers(registry: RegistryServer, repo: str, tag: str) -> list[dict]:
    resp = requests.get(
        f"http://{registry.host}/v2/{repo}/manifests/{tag}", headers={"Accept": V2S2}, timeout=10
    )
    resp.raise_for_status()
    return list(resp.json()["layers"])


def _yml(box: str, target: RegistryServer, creds: str) -> str:
    return f"""
box:
  id: {box}
{creds}
build:
  steps:
    - script:
        code: echo built > out.txt
    - internal/docker-push:
        repository: {target.host}/acme/on-private-box
        tag: v1
"""


def test_box_credentials_from_wercker_yml(
    tmp_path: Path,
    registry_htpasswd_tls: RegistryServer,
    registry_plain: RegistryServer,
    busybox_image: Callable[[RegistryServer], str],
) -> None:
    box = busybox_image(registry_htpasswd_tls)
    creds = f"  username: {registry_htpasswd_tls.username}\n  password: $BOX_PASSWORD\n"
    got = run_scenario(
        tmp_path,
        {
            "wercker.yml": _yml(box, registry_plain, creds),
            "config": {"secrets": {"BOX_PASSWORD": registry_htpasswd_tls.password}},
        },
        registries={registry_htpasswd_tls.host: {"ca_file": registry_htpasswd_tls.ca_file}},
    )
    assert got["result"] == "passed", got["log"]
    assert len(_layers(registry_plain, "acme/on-private-box", "v1")) >= 2  # box + source
    assert registry_htpasswd_tls.password not in got["log"]


def test_box_credentials_from_the_registry_config(
    tmp_path: Path,
    registry_htpasswd_tls: RegistryServer,
    registry_plain: RegistryServer,
    busybox_image: Callable[[RegistryServer], str],
) -> None:
    box = busybox_image(registry_htpasswd_tls)
    registries = {
        registry_htpasswd_tls.host: {
            "ca_file": registry_htpasswd_tls.ca_file,
            "username": registry_htpasswd_tls.username,
            "password": registry_htpasswd_tls.password,
        }
    }
    got = run_scenario(
        tmp_path, {"wercker.yml": _yml(box, registry_plain, "")}, registries=registries
    )
    assert got["result"] == "passed", got["log"]
    assert len(_layers(registry_plain, "acme/on-private-box", "v1")) >= 2


def test_box_with_a_wrong_password_is_a_clear_error(
    tmp_path: Path,
    registry_htpasswd_tls: RegistryServer,
    registry_plain: RegistryServer,
    busybox_image: Callable[[RegistryServer], str],
) -> None:
    box = busybox_image(registry_htpasswd_tls)
    creds = f"  username: {registry_htpasswd_tls.username}\n  password: wrong-box-pw\n"
    got = run_scenario(
        tmp_path,
        {"wercker.yml": _yml(box, registry_plain, creds)},
        registries={registry_htpasswd_tls.host: {"ca_file": registry_htpasswd_tls.ca_file}},
    )
    assert got["result"] == "failed"
    assert registry_htpasswd_tls.host in got["statuses"]["build"]
    assert "wrong-box-pw" not in got["log"] and "wrong-box-pw" not in got["statuses"]["build"]
