"""ECR logins: the token cache (boto3 faked), host detection, and the API calls' retries:
boto3's silent retries are off, and every retry of ours is in the build log with its cause
and wait."""

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


class FakeEcr:
    def __init__(self, expires: datetime) -> None:
        self.calls = 0
        self.expires = expires

    def get_authorization_token(self, registryIds: list[str]) -> dict[str, Any]:
        self.calls += 1
        token = base64.b64encode(f"AWS:pw-{self.calls}".encode()).decode()
        return {
            "authorizationData": [
                {
                    "authorizationToken": token,
                    "expiresAt": self.expires,
                    "proxyEndpoint": "https://x",
                }
            ]
        }


@pytest.fixture(autouse=True)
def empty_cache() -> None:
    ecr._cache.clear()


def test_token_is_cached_until_an_hour_before_expiry(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeEcr(datetime.now(UTC) + timedelta(hours=12))
    monkeypatch.setattr(ecr, "_client", lambda reg, auth, url: fake)
    reg = ecr.EcrRegistry("123456789012", "us-east-1")
    auth = RegistryAuth(aws_access_key="AKIA", aws_secret_key="s")
    assert ecr.login(reg, auth, None) == ("AWS", "pw-1")
    assert ecr.login(reg, auth, None) == ("AWS", "pw-1")
    assert fake.calls == 1
    other = RegistryAuth(aws_access_key="AKIB", aws_secret_key="t")
    assert ecr.login(reg, other, None) == ("AWS", "pw-2")  # another key pair, another token


def test_token_near_expiry_is_refreshed(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeEcr(datetime.now(UTC) + timedelta(minutes=50))
    monkeypatch.setattr(ecr, "_client", lambda reg, auth, url: fake)
    reg = ecr.EcrRegistry("123456789012", "us-east-1")
    ecr.login(reg, RegistryAuth(), None)
    ecr.login(reg, RegistryAuth(), None)
    assert fake.calls == 2


def test_ecr_host_detection() -> None:
    assert ecr.ecr_registry("123456789012.dkr.ecr.eu-west-1.amazonaws.com") == ecr.EcrRegistry(
        "123456789012", "eu-west-1"
    )
    assert ecr.ecr_registry("123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn") is not None
    assert ecr.ecr_registry("quay.io") is None
    assert ecr.ecr_registry("12345.dkr.ecr.us-east-1.amazonaws.com") is None


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
