"""ECR token caching (boto3 faked) and upload progress reporting."""

from __future__ import annotations

import base64
import io
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.pushers.daemonless import ProgressReader
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


def test_progress_reader_reports_and_keeps_its_length() -> None:
    seen: list[int] = []
    reader = ProgressReader(io.BytesIO(b"x" * 1000), 1000, seen.append, every=0.0)
    assert len(reader) == 1000
    while reader.read(300):
        pass
    assert seen == [300, 600, 900, 1000]
