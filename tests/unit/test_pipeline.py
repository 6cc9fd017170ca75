"""Resolving a pipeline's box: tag option, registry option, credentials."""

from __future__ import annotations

import pytest

from bot.logs import MemoryLog
from bot.settings import RegistrySettings


@pytest.mark.parametrize(
    ("box_id", "tag", "expected"),
    [
        ("busybox", "1.36", "registry-1.docker.io/library/busybox:1.36"),
        ("127.0.0.1:5000/a/b:old", "new", "127.0.0.1:5000/a/b:new"),
        ("127.0.0.1:5000/a/b", "", "127.0.0.1:5000/a/b:latest"),
    ],
)
def test_box_tag_option_replaces_the_ids_tag(box_id: str, tag: str, expected: str) -> None:
    from bot.pipeline import resolve_box
    from bot.wercker.model import BoxSpec, Loc

    box = BoxSpec(box_id, Loc("wercker.yml", 1, 1), {"tag": tag} if tag else {})
    ref, _ = resolve_box(box, {}, {}, MemoryLog())
    assert str(ref) == expected


def _box(options: dict[str, str], box_id: str = "acme/app") -> object:
    from bot.pipeline import resolve_box
    from bot.wercker.model import BoxSpec, Loc

    box = BoxSpec(box_id, Loc("wercker.yml", 1, 1), options)
    ref, _ = resolve_box(box, {"PW": "pw-value"}, REGISTRIES, MemoryLog())
    return ref


REGISTRIES = {
    "registry.internal:5000": RegistrySettings(
        host="registry.internal:5000", username="ci", password="from-config"
    )
}


def test_box_registry_option_decides_the_host_and_gets_the_credentials() -> None:
    ref = _box({"registry": "https://quay.io", "username": "u", "password": "$PW"})
    assert (ref.registry, ref.repository) == ("quay.io", "acme/app")  # type: ignore[attr-defined]
    assert ref.auth.password == "pw-value"  # type: ignore[attr-defined]


def test_box_with_ecr_keys_pulls_from_ecr() -> None:
    keys = {
        "aws-access-key": "AK",
        "aws-secret-key": "SK",
        "aws-region": "eu-west-1",
        "aws-registry-id": "123456789012",
    }
    ref = _box(keys)
    assert ref.registry == "123456789012.dkr.ecr.eu-west-1.amazonaws.com"  # type: ignore[attr-defined]


def test_box_credentials_default_to_the_registry_config() -> None:
    ref = _box({}, "registry.internal:5000/base/img@sha256:" + "a" * 64)
    assert ref.auth.username == "ci" and ref.auth.password == "from-config"  # type: ignore[attr-defined]
    assert ref.reference == "sha256:" + "a" * 64  # type: ignore[attr-defined]
