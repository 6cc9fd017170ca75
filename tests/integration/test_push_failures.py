"""Bad input at push time ends as a clear commit status, through the real orchestration."""

from __future__ import annotations

from pathlib import Path

from tests.harness.registry import RegistryServer, free_port
from tests.integration.test_scenarios import run_scenario


def _registries(server: RegistryServer) -> dict:
    return {host: {"ca_file": s.ca_file} for host, s in server.registries.items() if s.ca_file}


def test_wrong_password_is_failure_naming_the_registry(
    tmp_path: Path, registry_htpasswd_tls: RegistryServer
) -> None:
    yml = f"""
build:
  steps:
    - internal/docker-scratch-push:
        repository: {registry_htpasswd_tls.host}/acme/app
        username: {registry_htpasswd_tls.username}
        password: $PASSWORD
"""
    got = run_scenario(
        tmp_path,
        {"wercker.yml": yml, "config": {"secrets": {"PASSWORD": "not-the-password"}}},
        registries=_registries(registry_htpasswd_tls),
    )
    assert got["result"] == "failed"
    status = got["statuses"]["build"]
    assert status.startswith("failure: ") and registry_htpasswd_tls.host in status, status
    assert "not-the-password" not in status and "not-the-password" not in got["log"]


def test_undefined_password_fails_the_step_naming_the_variable(
    tmp_path: Path, registry_htpasswd_tls: RegistryServer
) -> None:
    yml = f"""
build:
  steps:
    - internal/docker-scratch-push:
        repository: {registry_htpasswd_tls.host}/acme/app
        username: someone
        password: $PASSWORD
"""
    got = run_scenario(tmp_path, {"wercker.yml": yml})
    assert got["result"] == "failed"
    status = got["statuses"]["build"]
    assert "$PASSWORD" in status and "password" in status, status


def test_registry_down_is_errored_with_a_clear_description(tmp_path: Path) -> None:
    """A registry on a closed port is the bot's environment (errored), not the step's."""
    host = f"127.0.0.1:{free_port()}"
    yml = f"""
build:
  steps:
    - internal/docker-scratch-push:
        repository: {host}/acme/app
"""
    got = run_scenario(tmp_path, {"wercker.yml": yml})
    assert got["result"] == "errored"
    status = got["statuses"]["build"]
    assert status.startswith("error: ") and host in status, status
    assert "connection refused" in status, status


def test_a_host_in_the_steps_repository_that_does_not_resolve_is_failure(
    tmp_path: Path,
) -> None:
    """The user's own wercker.yml names a host DNS does not know: the user's mistake."""
    yml = """
build:
  steps:
    - internal/docker-scratch-push:
        repository: no-such-host.invalid/acme/app
"""
    got = run_scenario(tmp_path, {"wercker.yml": yml})
    assert got["result"] == "failed"
    status = got["statuses"]["build"]
    assert status.startswith("failure: ") and "no-such-host.invalid" in status, status
    assert "does not resolve" in status, status


def test_a_denied_push_is_failure(tmp_path: Path, registry_token_tls: RegistryServer) -> None:
    issuer = registry_token_tls.issuer
    assert issuer is not None
    issuer.users["reader"] = "reader-Pa55"
    issuer.readers.add("reader")
    yml = f"""
build:
  steps:
    - internal/docker-scratch-push:
        repository: {registry_token_tls.host}/acme/ro
        username: reader
        password: $PASSWORD
"""
    try:
        got = run_scenario(
            tmp_path,
            {"wercker.yml": yml, "config": {"secrets": {"PASSWORD": "reader-Pa55"}}},
            registries=_registries(registry_token_tls),
        )
    finally:
        issuer.users.pop("reader")
        issuer.readers.discard("reader")
    assert got["result"] == "failed"
    status = got["statuses"]["build"]
    assert status.startswith("failure: ") and "denied" in status, status
    assert "reader-Pa55" not in got["log"]


def test_pushed_image_never_carries_a_secret(
    tmp_path: Path, registry_plain: RegistryServer
) -> None:
    yml = f"""
build:
  steps:
    - internal/docker-scratch-push:
        repository: {registry_plain.host}/acme/leak
        env: "TOKEN=$API_TOKEN"
"""
    got = run_scenario(
        tmp_path, {"wercker.yml": yml, "config": {"secrets": {"API_TOKEN": "tok-very-secret"}}}
    )
    assert got["result"] == "failed"
    assert "secret API_TOKEN" in got["statuses"]["build"]
    assert "tok-very-secret" not in got["log"]


def test_a_password_from_plain_env_is_masked_once_used(
    tmp_path: Path, registry_plain: RegistryServer
) -> None:
    yml = f"""
build:
  steps:
    - internal/docker-scratch-push:
        repository: {registry_plain.host}/acme/masked
        username: ci
        password: $REG_PASSWORD
    - script:
        name: leak attempt
        code: echo "pw=$REG_PASSWORD"
"""
    got = run_scenario(
        tmp_path, {"wercker.yml": yml, "config": {"env": {"REG_PASSWORD": "plain-env-pw-123"}}}
    )
    assert got["result"] == "passed", got["log"]
    assert "pw=****" in got["log"] and "plain-env-pw-123" not in got["log"]
