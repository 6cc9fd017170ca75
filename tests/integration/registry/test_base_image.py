"""The daemonless pusher's base image (the box ``internal/docker-push`` builds on, on the
local runner) when it cannot be had, on real registries and real DNS: every error carries its
facts, and is on the side it belongs to (``StepError``: failed; otherwise errored)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.errors import (
    RegistryAuthError,
    RegistryError,
    RegistryUnavailable,
    StepError,
    UnknownRegistryHost,
)
from bot.logs import MemoryLog
from bot.pushers.credentials import RegistryCredentials
from bot.pushers.daemonless import DaemonlessPusher
from bot.pushers.model import ImageConfig, ImageRef, ImageSpec, LayerDir, RegistryAuth
from bot.pushers.registry.base_image import BASE_NAMED_IN
from tests.harness.registry import RegistryServer, free_port
from tests.integration.registry.test_push import FAST, push, source_dir, target_for


def push_on(server: RegistryServer, tmp_path: Path, base: ImageRef) -> None:
    image = ImageSpec([LayerDir(source_dir(tmp_path), "/app")], ImageConfig(), base=base)
    push(server, tmp_path, image, target_for(server, "acme/on-box"))


def test_a_box_on_a_host_that_does_not_resolve_fails_naming_host_and_key(
    registry_plain: RegistryServer, tmp_path: Path
) -> None:
    base = ImageRef("no-such-host.invalid", "acme/box", "1", "https", RegistryAuth())
    with pytest.raises(UnknownRegistryHost) as info:
        push_on(registry_plain, tmp_path, base)
    err = info.value
    assert isinstance(err, StepError)
    assert "no-such-host.invalid" in str(err) and "wercker.yml 'box'" in str(err)
    assert (err.host, err.named_in, err.registry, err.repository, err.action) == (
        "no-such-host.invalid",
        BASE_NAMED_IN,
        "no-such-host.invalid",
        "acme/box",
        "pull",
    )


def test_a_box_the_registry_does_not_have_fails_with_404(
    registry_plain: RegistryServer, tmp_path: Path
) -> None:
    base = ImageRef(registry_plain.host, "library/nope", "1.0", "http", RegistryAuth())
    with pytest.raises(RegistryError) as info:
        push_on(registry_plain, tmp_path, base)
    err = info.value
    assert type(err) is RegistryError
    assert (err.registry, err.repository, err.action, err.http_status) == (
        registry_plain.host,
        "library/nope",
        "pull",
        404,
    )
    assert "MANIFEST_UNKNOWN" in err.codes


def test_a_box_the_registry_refuses_fails_with_401(
    registry_plain: RegistryServer, registry_htpasswd_tls: RegistryServer, tmp_path: Path
) -> None:
    wrong = RegistryAuth(registry_htpasswd_tls.auth.username, "wrong-password-123")
    base = ImageRef(registry_htpasswd_tls.host, "library/busybox", "latest", "https", wrong)
    registries = {**registry_plain.registries, **registry_htpasswd_tls.registries}
    pusher = DaemonlessPusher(
        registries, tmp_path / "cache", credentials=RegistryCredentials(registries), retry=FAST
    )
    image = ImageSpec([LayerDir(source_dir(tmp_path), "/app")], ImageConfig(), base=base)
    with pytest.raises(RegistryAuthError) as info:
        pusher.push(image, target_for(registry_plain, "acme/on-box"), MemoryLog())
    err = info.value
    assert isinstance(err, StepError)
    assert (err.registry, err.http_status) == (registry_htpasswd_tls.host, 401)
    assert "wrong-password-123" not in str(err)


def test_a_box_registry_that_is_not_listening_is_errored(
    registry_plain: RegistryServer, tmp_path: Path
) -> None:
    host = f"127.0.0.1:{free_port()}"
    base = ImageRef(host, "acme/box", "1", "http", RegistryAuth())
    with pytest.raises(RegistryUnavailable) as info:
        push_on(registry_plain, tmp_path, base)
    assert not isinstance(info.value, StepError)
    assert (info.value.registry, info.value.http_status) == (host, None)
