"""ECR API calls: boto3's silent retries are off, and every retry of ours is in the build
log with its cause and wait."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.stub import Stubber

from bot.errors import RegistryError, RegistryUnavailable
from bot.logs import MemoryLog
from bot.pushers.model import RegistryAuth
from bot.pushers.registry import ecr

REG = ecr.EcrRegistry("123456789012", "eu-west-1")
AUTH = RegistryAuth(aws_access_key="AKIAEXAMPLE", aws_secret_key="secret-key-value")


@pytest.fixture
def stubbed(monkeypatch: pytest.MonkeyPatch) -> Stubber:
    client = ecr._client(REG, AUTH, None)
    # boto3 itself must not retry: its retries are silent.
    assert client.meta.config.retries["total_max_attempts"] == 1
    stubber = Stubber(client)
    monkeypatch.setattr(ecr, "_client", lambda *_a: client)
    monkeypatch.setattr(ecr.time, "sleep", lambda _s: None)
    ecr._cache.clear()
    return stubber


def _token() -> dict[str, Any]:
    return {
        "authorizationData": [
            {
                "authorizationToken": base64.b64encode(b"AWS:token-value").decode(),
                "expiresAt": datetime.now(UTC) + timedelta(hours=12),
                "proxyEndpoint": "https://123456789012.dkr.ecr.eu-west-1.amazonaws.com",
            }
        ]
    }


def test_a_throttled_login_is_retried_and_every_retry_is_logged(stubbed: Stubber) -> None:
    stubbed.add_client_error("get_authorization_token", "ThrottlingException", "slow down")
    stubbed.add_client_error(
        "get_authorization_token", "ServiceUnavailableException", "busy", http_status_code=503
    )
    stubbed.add_response("get_authorization_token", _token())
    log = MemoryLog()
    with stubbed:
        assert ecr.login(REG, AUTH, None, log.warn) == ("AWS", "token-value")
    lines = [line for line in log.text.splitlines() if "retrying" in line]
    assert lines == [
        "[wercker-bot] warning: AWS answered ThrottlingException when asked to get a registry "
        "login token; retrying in 1 s (attempt 2 of 4)",
        "[wercker-bot] warning: AWS answered ServiceUnavailableException when asked to get a "
        "registry login token; retrying in 2 s (attempt 3 of 4)",
    ]


def test_refused_credentials_are_not_retried(stubbed: Stubber) -> None:
    stubbed.add_client_error("get_authorization_token", "UnrecognizedClientException", "no")
    log = MemoryLog()
    with stubbed, pytest.raises(RegistryError, match="UnrecognizedClientException"):
        ecr.login(REG, AUTH, None, log.warn)
    assert "retrying" not in log.text


def test_a_login_that_stays_throttled_fails_after_every_try_was_announced(
    stubbed: Stubber,
) -> None:
    for _ in range(ecr.ATTEMPTS):
        stubbed.add_client_error("get_authorization_token", "ThrottlingException", "slow")
    log = MemoryLog()
    with stubbed, pytest.raises(RegistryUnavailable, match="ThrottlingException") as info:
        ecr.login(REG, AUTH, None, log.warn)
    assert log.text.count("retrying in") == ecr.ATTEMPTS - 1
    # still throttled after every retry: AWS is busy, not the step wrong (→ errored)
    assert info.value.codes == ("ThrottlingException",) and info.value.action == "auth"
