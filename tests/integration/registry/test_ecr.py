"""ECR: a login token and repository creation from moto's ECR API, with the ECR host mapped
onto a local htpasswd registry whose only user is moto's ``AWS`` token."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import boto3
import pytest

from bot.errors import RegistryAuthError
from bot.logs import MemoryLog
from bot.pushers.credentials import RegistryCredentials
from bot.pushers.daemonless import DaemonlessPusher
from bot.pushers.model import ImageConfig, ImageSpec, LayerDir
from bot.pushers.registry.client import RetryPolicy
from bot.pushers.target import resolve_target
from bot.settings import RegistrySettings
from tests.harness.registry import MotoServer, RegistryServer

ACCOUNT = "123456789012"
REGION = "us-east-1"
ECR_HOST = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com"
MOTO_PASSWORD = f"{ACCOUNT}-auth-token"  # moto answers base64("AWS:<id>-auth-token")
KEYS = {"aws-access-key": "AKIATESTKEY", "aws-secret-key": "test-Secret-Key-123"}


@pytest.fixture(autouse=True)
def no_host_aws_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_DEFAULT_REGION",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture(scope="module")
def ecr_registry(registry_factory: Callable[..., RegistryServer]) -> Iterator[RegistryServer]:
    server = registry_factory("htpasswd", users={"AWS": MOTO_PASSWORD})
    yield server
    server.stop()


def settings(server: RegistryServer, moto: MotoServer, create: bool) -> dict[str, RegistrySettings]:
    return {
        server.host: RegistrySettings(
            host=server.host,
            ca_file=server.ca_file,
            mirror_of=ECR_HOST,
            aws_endpoint_url=moto.endpoint_url,
            create_repository=create,
        )
    }


def ecr_client(moto: MotoServer) -> object:
    return boto3.client(
        "ecr",
        region_name=REGION,
        endpoint_url=moto.endpoint_url,
        aws_access_key_id="x",
        aws_secret_access_key="y",
    )


def push(
    server: RegistryServer,
    moto: MotoServer,
    tmp_path: Path,
    options: dict[str, str],
    create: bool = True,
) -> tuple[str, str]:
    registries = settings(server, moto, create)
    log = MemoryLog()
    target = resolve_target(options, default_tag="main", registries=registries, log=log)
    assert target.registry == ECR_HOST
    src = tmp_path / "src"
    src.mkdir(exist_ok=True)
    (src / "app.txt").write_text("ecr")
    pusher = DaemonlessPusher(
        registries,
        tmp_path / "cache",
        credentials=RegistryCredentials(registries),
        retry=RetryPolicy(attempts=2, backoff=0.05),
    )
    result = pusher.push(ImageSpec([LayerDir(src, "/")], ImageConfig(cmd=["/app"])), target, log)
    return result.digest, log.text


def test_ecr_token_and_repository_creation(
    ecr_registry: RegistryServer, moto_ecr: MotoServer, tmp_path: Path
) -> None:
    options = {
        "repository": "team/app",
        "tag": "v1",
        "aws-region": REGION,
        "aws-registry-id": ACCOUNT,
        **KEYS,
    }
    digest, log = push(ecr_registry, moto_ecr, tmp_path, options)
    assert "created ECR repository team/app" in log
    assert KEYS["aws-secret-key"] not in log and MOTO_PASSWORD not in log
    repos = ecr_client(moto_ecr).describe_repositories(repositoryNames=["team/app"])  # type: ignore[attr-defined]
    assert repos["repositories"][0]["repositoryName"] == "team/app"
    # the htpasswd registry only knows user AWS with moto's token: the Basic login worked
    assert (
        ecr_registry.skopeo(
            "inspect",
            "--tls-verify=false",
            "--creds",
            f"AWS:{MOTO_PASSWORD}",
            f"docker://{ecr_registry.ref('team/app', 'v1')}",
            creds=False,
        ).returncode
        == 0
    )
    again, log2 = push(ecr_registry, moto_ecr, tmp_path, options)
    assert again == digest and "created ECR repository" not in log2


def test_ecr_with_the_default_credential_chain(
    ecr_registry: RegistryServer,
    moto_ecr: MotoServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAFROMENV")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "from-env-secret")
    options = {"repository": f"{ECR_HOST}/team/chain", "tag": "v1"}
    digest, log = push(
        ecr_registry,
        moto_ecr,
        tmp_path,
        {**options, "aws-region": REGION, "aws-registry-id": ACCOUNT},
    )
    assert digest.startswith("sha256:") and "created ECR repository team/chain" in log


def test_ecr_without_any_credentials_is_a_clear_auth_error(
    ecr_registry: RegistryServer, moto_ecr: MotoServer, tmp_path: Path
) -> None:
    options = {"repository": "team/nocreds", "aws-region": REGION, "aws-registry-id": ACCOUNT}
    with pytest.raises(RegistryAuthError, match="no AWS credentials"):
        push(ecr_registry, moto_ecr, tmp_path, options, create=False)
