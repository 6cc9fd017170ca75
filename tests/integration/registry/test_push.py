"""Daemonless pushes against real registries (distribution 2.8), read back with skopeo and
with plain HTTP requests."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import re
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest
import requests

from bot.errors import RegistryAuthError, RegistryUnavailable
from bot.logs import MemoryLog
from bot.masking import Masker
from bot.pushers.credentials import RegistryCredentials
from bot.pushers.daemonless import DaemonlessPusher
from bot.pushers.model import ImageConfig, ImageSpec, LayerDir, PushResult, RegistryAuth, Target
from bot.pushers.registry.client import RegistryClient, RetryPolicy
from bot.pushers.registry.image import DOCKER_MANIFEST, OCI_MANIFEST
from bot.pushers.target import parse_image_ref
from tests.harness.registry import RegistryServer, free_port

FAST = RetryPolicy(attempts=3, backoff=0.05, factor=2)
FLAVOURS = ["registry_plain", "registry_htpasswd_tls", "registry_token_tls"]


def target_for(
    server: RegistryServer, repository: str, *tags: str, auth: RegistryAuth | None = None
) -> Target:
    return Target(
        server.host,
        repository,
        tags or ("latest",),
        "http" if server.scheme == "http" else "https",
        server.auth if auth is None else auth,
    )


def source_dir(tmp_path: Path, text: str = "hello") -> Path:
    src = tmp_path / "src"
    (src / "bin").mkdir(parents=True)
    (src / "hello.txt").write_text(text)
    (src / "bin" / "run.sh").write_text("#!/bin/sh\necho hi\n")
    (src / "bin" / "run.sh").chmod(0o755)
    return src


def push(
    server: RegistryServer,
    tmp_path: Path,
    image: ImageSpec,
    target: Target,
    cache: Path | None = None,
) -> tuple[PushResult, str]:
    log = MemoryLog(Masker(target.auth.secrets()))
    pusher = DaemonlessPusher(
        server.registries,
        cache or tmp_path / "cache",
        credentials=RegistryCredentials(server.registries),
        retry=FAST,
    )
    return pusher.push(image, target, log), log.text


def read(server: RegistryServer, path: str, accept: str = "") -> requests.Response:
    """A registry GET with the server's credentials (Basic or a token), for read-back."""
    client = RegistryClient(
        server.host,
        "http" if server.scheme == "http" else "https",
        server.auth,
        server.registries,
        credentials=RegistryCredentials(server.registries),
    )
    repo = path.split("/manifests/")[0].split("/blobs/")[0]
    resp = client.request(
        "GET",
        client.url(path),
        scopes=[f"repository:{repo}:pull"],
        action="pull from",
        repository=repo,
        headers={"Accept": accept} if accept else None,
    )
    resp.raise_for_status()
    return resp


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_scratch_push_reads_back(
    flavour: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    server: RegistryServer = request.getfixturevalue(flavour)
    config = ImageConfig(
        cmd=["/bin/run.sh"],
        env={"A": "1"},
        ports=["8080"],
        labels={"org.example": "x"},
        working_dir="/",
    )
    result, log = push(
        server,
        tmp_path,
        ImageSpec([LayerDir(source_dir(tmp_path), "/")], config),
        target_for(server, "acme/scratch", "v1", "main"),
    )

    inspected = server.inspect("acme/scratch", "v1")
    assert inspected["Digest"] == result.digest
    assert set(inspected["RepoTags"]) >= {"v1", "main"}
    assert inspected["Labels"] == {"org.example": "x"}
    assert server.inspect("acme/scratch", "main")["Digest"] == result.digest

    manifest_resp = read(server, "acme/scratch/manifests/v1", DOCKER_MANIFEST)
    body = manifest_resp.content
    assert "sha256:" + hashlib.sha256(body).hexdigest() == result.digest
    manifest = json.loads(body)
    assert manifest["mediaType"] == DOCKER_MANIFEST and len(manifest["layers"]) == 1
    config_doc = json.loads(
        read(server, f"acme/scratch/blobs/{manifest['config']['digest']}").content
    )
    assert config_doc["config"]["Cmd"] == ["/bin/run.sh"]
    assert config_doc["config"]["ExposedPorts"] == {"8080/tcp": {}}
    blob = read(server, f"acme/scratch/blobs/{manifest['layers'][0]['digest']}").content
    plain = gzip.decompress(blob)
    assert config_doc["rootfs"]["diff_ids"] == ["sha256:" + hashlib.sha256(plain).hexdigest()]
    with tarfile.open(fileobj=io.BytesIO(plain)) as tar:
        assert tar.extractfile("hello.txt").read() == b"hello"  # type: ignore[union-attr]
        assert tar.getmember("bin/run.sh").mode == 0o755
    assert "uploaded" in log and server.password not in log if server.password else True


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_push_on_busybox_base_mounts_base_layers(
    flavour: str,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    busybox_image: Callable[[RegistryServer], str],
) -> None:
    server: RegistryServer = request.getfixturevalue(flavour)
    base_ref = parse_image_ref(
        busybox_image(server), auth=server.auth, registries=server.registries
    )
    before = len(server.issuer.requests) if server.issuer else 0
    image = ImageSpec(
        [LayerDir(source_dir(tmp_path), "/pipeline/source")],
        ImageConfig(cmd=["cat", "/pipeline/source/hello.txt"]),
        base=base_ref,
    )
    result, log = push(server, tmp_path, image, target_for(server, "acme/onbase", "v1"))
    exchanges = server.issuer.requests[before:] if server.issuer else []

    base = server.inspect("library/busybox")
    mine = server.inspect("acme/onbase", "v1")
    assert mine["Digest"] == result.digest
    assert mine["Layers"][: len(base["Layers"])] == base["Layers"]
    assert len(mine["Layers"]) == len(base["Layers"]) + 1
    assert "PATH=" in " ".join(mine["Env"])  # base Env kept
    assert "mounted from library/busybox" in log
    if server.issuer is not None:
        # one token exchange asked for the target push and the mount source pull up front
        assert len(exchanges) == 1, exchanges
        assert set(exchanges[0][1]) == {
            "repository:acme/onbase:pull,push",
            "repository:library/busybox:pull",
        }


def test_base_from_another_registry_is_streamed(
    registry_plain: RegistryServer,
    registry_htpasswd_tls: RegistryServer,
    tmp_path: Path,
    busybox_image: Callable[[RegistryServer], str],
) -> None:
    base_ref = parse_image_ref(
        busybox_image(registry_plain), auth=RegistryAuth(), registries=registry_plain.registries
    )
    registries = {**registry_plain.registries, **registry_htpasswd_tls.registries}
    log = MemoryLog()
    DaemonlessPusher(
        registries, tmp_path / "cache", credentials=RegistryCredentials(registries), retry=FAST
    ).push(
        ImageSpec([LayerDir(source_dir(tmp_path), "/app")], ImageConfig(), base=base_ref),
        target_for(registry_htpasswd_tls, "acme/copied", "v1"),
        log,
    )
    base = registry_plain.inspect("library/busybox")
    mine = registry_htpasswd_tls.inspect("acme/copied", "v1")
    assert mine["Layers"][:-1] == base["Layers"]
    assert f"copied from {registry_plain.host}/library/busybox" in log.text


def test_oci_base_gives_an_oci_manifest(
    registry_plain: RegistryServer,
    tmp_path: Path,
    busybox_image: Callable[[RegistryServer], str],
) -> None:
    busybox_image(registry_plain)
    done = registry_plain.skopeo(
        "copy",
        "--format",
        "oci",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        f"docker://{registry_plain.ref('library/busybox')}",
        f"docker://{registry_plain.ref('library/busybox-oci')}",
    )
    assert done.returncode == 0, done.stderr
    base_ref = parse_image_ref(
        registry_plain.ref("library/busybox-oci"),
        auth=RegistryAuth(),
        registries=registry_plain.registries,
    )
    push(
        registry_plain,
        tmp_path,
        ImageSpec([LayerDir(source_dir(tmp_path), "/x")], ImageConfig(), base=base_ref),
        target_for(registry_plain, "acme/oci", "v1"),
    )
    raw = registry_plain.inspect("acme/oci", "v1", raw=True)
    assert raw["mediaType"] == OCI_MANIFEST
    assert {layer["mediaType"] for layer in raw["layers"]} == {
        "application/vnd.oci.image.layer.v1.tar+gzip"
    }


def test_repush_uploads_nothing(registry_plain: RegistryServer, tmp_path: Path) -> None:
    image = ImageSpec([LayerDir(source_dir(tmp_path), "/")], ImageConfig(cmd=["/x"]))
    target = target_for(registry_plain, "acme/again", "v1")
    first, log1 = push(registry_plain, tmp_path, image, target)
    second, log2 = push(registry_plain, tmp_path, image, target)
    assert first.digest == second.digest
    assert "built" in log1 and "uploaded" in log1
    assert "built" not in log2 and "uploaded" not in log2 and "already exists" in log2
    assert "stored as acme/again:v1" in log1 and "stored as" not in log2
    assert f"acme/again:v1 is already {first.digest[:19]}" in log2
    third, _ = push(
        registry_plain, tmp_path, image, target_for(registry_plain, "acme/again", "v1", "v2")
    )
    assert registry_plain.inspect("acme/again", "v2")["Digest"] == third.digest == first.digest


@pytest.mark.parametrize("flavour", ["registry_htpasswd_tls", "registry_token_tls"])
def test_wrong_password_is_a_clear_auth_error(
    flavour: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    server: RegistryServer = request.getfixturevalue(flavour)
    bad = "wrong-Passw0rd-xyz"
    target = target_for(server, "acme/denied", auth=RegistryAuth(server.username, bad))
    with pytest.raises(RegistryAuthError) as info:
        push(
            server,
            tmp_path,
            ImageSpec([LayerDir(source_dir(tmp_path), "/")], ImageConfig()),
            target,
        )
    message = str(info.value)
    assert server.host in message and bad not in message
    assert "username and password" in message and repr(server.username) in message


def test_pull_only_token_user_is_denied_push(
    registry_token_tls: RegistryServer, tmp_path: Path
) -> None:
    issuer = registry_token_tls.issuer
    assert issuer is not None
    issuer.users["reader"] = "reader-Pa55"
    issuer.readers.add("reader")
    try:
        with pytest.raises(RegistryAuthError) as info:
            push(
                registry_token_tls,
                tmp_path,
                ImageSpec([LayerDir(source_dir(tmp_path), "/")], ImageConfig()),
                target_for(
                    registry_token_tls, "acme/ro", auth=RegistryAuth("reader", "reader-Pa55")
                ),
            )
        message = str(info.value)
        assert "denied push to acme/ro" in message and "'reader'" in message
        facts = info.value
        assert (facts.registry, facts.repository, facts.action) == (
            registry_token_tls.host,
            "acme/ro",
            "push",
        )
        assert facts.http_status in (401, 403), facts.http_status
        # distribution writes the actions in either order (a Go map)
        assert re.search(r"repository:acme/ro:(pull,push|push,pull)", message), message
        assert "reader-Pa55" not in message
    finally:
        issuer.users.pop("reader")
        issuer.readers.discard("reader")


def test_pull_only_robot_account_is_named_when_denied_push(
    registry_token_tls: RegistryServer, tmp_path: Path
) -> None:
    """A quay.io-style robot name (``org+robot``): the message names it, never its token."""
    issuer = registry_token_tls.issuer
    assert issuer is not None
    robot_token = "R0BOT-T0KEN-ABCDEF0123456789"
    issuer.users["acme+ci"] = robot_token
    issuer.readers.add("acme+ci")
    try:
        with pytest.raises(RegistryAuthError) as info:
            push(
                registry_token_tls,
                tmp_path,
                ImageSpec([LayerDir(source_dir(tmp_path), "/")], ImageConfig()),
                target_for(
                    registry_token_tls, "acme/app", auth=RegistryAuth("acme+ci", robot_token)
                ),
            )
        message = str(info.value)
        assert "denied push to acme/app" in message and "acme+ci" in message
        assert robot_token not in message
        # the robot did reach the token service under its own name ('+' intact)
        assert any(user == "acme+ci" for user, _ in issuer.requests)
    finally:
        issuer.users.pop("acme+ci")
        issuer.readers.discard("acme+ci")


def test_registry_down_is_unavailable(tmp_path: Path) -> None:
    host = f"127.0.0.1:{free_port()}"
    target = Target(host, "acme/app", ("v1",), "auto")
    pusher = DaemonlessPusher(
        {}, tmp_path / "cache", credentials=RegistryCredentials({}), retry=FAST
    )
    with pytest.raises(RegistryUnavailable) as info:
        pusher.push(
            ImageSpec([LayerDir(source_dir(tmp_path), "/")], ImageConfig()), target, MemoryLog()
        )
    assert str(info.value) == (
        f"cannot reach {host}: connection refused (is the registry running, and is the "
        "host/port in 'repository' right?)"
    )


def test_token_expiring_mid_push_is_renewed(
    registry_token_tls: RegistryServer, tmp_path: Path
) -> None:
    """A token the registry stops accepting between the blob upload and the manifest PUT:
    the 401 makes the client fetch a new token and retry once."""
    import time

    issuer = registry_token_tls.issuer
    assert issuer is not None
    # distribution accepts a token ~60 s past exp: ttl -57 → dead ~3 s after issue, while
    # expires_in tells the client it is good for 300 s.
    issuer.ttl, issuer.advertised_ttl = -57.0, 300.0
    try:
        client = RegistryClient(
            registry_token_tls.host,
            "https",
            registry_token_tls.auth,
            registry_token_tls.registries,
            credentials=RegistryCredentials(registry_token_tls.registries),
            retry=FAST,
        )
        blob = b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}'
        digest = "sha256:" + hashlib.sha256(blob).hexdigest()
        before = len(issuer.requests)
        assert (
            client.upload_blob(
                "acme/expiry", digest, len(blob), lambda: __import__("contextlib").nullcontext(blob)
            )
            == "uploaded"
        )
        assert len(issuer.requests) == before + 1
        time.sleep(4)
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": DOCKER_MANIFEST,
                "config": {
                    "mediaType": "application/vnd.docker.container.image.v1+json",
                    "digest": digest,
                    "size": len(blob),
                },
                "layers": [],
            }
        ).encode()
        got = client.put_manifest("acme/expiry", "v1", manifest, DOCKER_MANIFEST)
        assert got == "sha256:" + hashlib.sha256(manifest).hexdigest()
        assert len(issuer.requests) == before + 2
    finally:
        issuer.ttl, issuer.advertised_ttl = 300.0, None


def test_no_credentials_for_a_protected_registry_says_so(
    registry_htpasswd_tls: RegistryServer, tmp_path: Path
) -> None:
    with pytest.raises(RegistryAuthError, match="needs credentials to push to acme/anon"):
        push(
            registry_htpasswd_tls,
            tmp_path,
            ImageSpec([LayerDir(source_dir(tmp_path), "/")], ImageConfig()),
            target_for(registry_htpasswd_tls, "acme/anon", auth=RegistryAuth()),
        )


def test_token_scope_escalates_from_pull_to_push(
    registry_token_tls: RegistryServer,
    tmp_path: Path,
    busybox_image: Callable[[RegistryServer], str],
) -> None:
    busybox_image(registry_token_tls)
    issuer = registry_token_tls.issuer
    assert issuer is not None
    client = RegistryClient(
        registry_token_tls.host,
        "https",
        registry_token_tls.auth,
        registry_token_tls.registries,
        credentials=RegistryCredentials(registry_token_tls.registries),
        retry=FAST,
    )
    before = len(issuer.requests)
    manifest = client.get_manifest("library/busybox", "latest")
    assert len(issuer.requests) == before + 1
    assert issuer.requests[-1][1] == ["repository:library/busybox:pull"]
    config = json.loads(manifest.body)["config"]
    blob = client.get_blob("library/busybox", config["digest"])
    assert len(issuer.requests) == before + 1  # the pull token is reused
    from contextlib import nullcontext
    from io import BytesIO

    outcome = client.upload_blob(
        "acme/escalated",
        config["digest"],
        len(blob),
        lambda: nullcontext(BytesIO(blob)),
        mount_from="library/busybox",
    )
    assert outcome == "mounted"
    assert len(issuer.requests) == before + 2
    assert issuer.requests[-1][1][0] == "repository:acme/escalated:pull,push"  # new scope first
    assert "repository:library/busybox:pull" in issuer.requests[-1][1]


def test_one_pusher_shared_by_threads(registry_plain: RegistryServer, tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    pusher = DaemonlessPusher(
        registry_plain.registries,
        tmp_path / "cache",
        credentials=RegistryCredentials(registry_plain.registries),
        retry=FAST,
    )

    def one(i: int) -> tuple[str, str]:
        src = tmp_path / f"src{i}"
        src.mkdir()
        (src / "n.txt").write_text(str(i % 3))  # some pushes share layers
        result = pusher.push(
            ImageSpec([LayerDir(src, "/")], ImageConfig(cmd=[str(i)])),
            target_for(registry_plain, f"acme/par{i}", "v1"),
            MemoryLog(),
        )
        return f"acme/par{i}", result.digest

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(one, range(8)))
    assert len({d for _, d in results}) == 8
    for repo, digest in results:
        assert registry_plain.inspect(repo, "v1")["Digest"] == digest


def test_auto_scheme_uses_tls_without_a_ca_on_loopback(
    registry_htpasswd_tls: RegistryServer, tmp_path: Path
) -> None:
    """Like the Docker Engine: a loopback registry named without a scheme is tried over
    HTTPS without certificate verification (no ca_file configured here)."""
    target = Target(
        registry_htpasswd_tls.host, "acme/auto", ("v1",), "auto", registry_htpasswd_tls.auth
    )
    result = DaemonlessPusher(
        {}, tmp_path / "cache", credentials=RegistryCredentials({}), retry=FAST
    ).push(ImageSpec([LayerDir(source_dir(tmp_path), "/")], ImageConfig()), target, MemoryLog())
    assert registry_htpasswd_tls.inspect("acme/auto", "v1")["Digest"] == result.digest


def test_mount_refused_for_the_source_falls_back_to_copying(
    registry_token_tls: RegistryServer,
    tmp_path: Path,
    busybox_image: Callable[[RegistryServer], str],
) -> None:
    """The pushing user may not read the base's repository (a pull-only base credential is
    used for the base): the mount is refused, and the layers are streamed instead."""
    issuer = registry_token_tls.issuer
    assert issuer is not None
    base_text = busybox_image(registry_token_tls)
    issuer.users["writer"] = "writer-Pa55"
    real_issue = issuer.issue

    def no_base_for_writer(username: str, scopes: list[str]) -> dict[str, object]:
        if username == "writer":
            scopes = [s for s in scopes if "library/busybox" not in s]
        return real_issue(username, scopes)

    issuer.issue = no_base_for_writer  # type: ignore[method-assign]
    try:
        base_ref = parse_image_ref(
            base_text, auth=registry_token_tls.auth, registries=registry_token_tls.registries
        )
        result, log = push(
            registry_token_tls,
            tmp_path,
            ImageSpec([LayerDir(source_dir(tmp_path), "/x")], ImageConfig(), base=base_ref),
            target_for(
                registry_token_tls, "acme/nomount", "v1", auth=RegistryAuth("writer", "writer-Pa55")
            ),
        )
    finally:
        issuer.issue = real_issue  # type: ignore[method-assign]
        issuer.users.pop("writer")
    assert "mounted" not in log and "copied from" in log
    assert registry_token_tls.inspect("acme/nomount", "v1")["Digest"] == result.digest


def test_missing_base_image_is_a_clear_error(
    registry_plain: RegistryServer, tmp_path: Path
) -> None:
    from bot.errors import RegistryError

    base_ref = parse_image_ref(
        registry_plain.ref("library/nope", "1.0"),
        auth=RegistryAuth(),
        registries=registry_plain.registries,
    )
    with pytest.raises(RegistryError) as info:
        push(
            registry_plain,
            tmp_path,
            ImageSpec([LayerDir(source_dir(tmp_path), "/")], ImageConfig(), base=base_ref),
            target_for(registry_plain, "acme/nobase"),
        )
    assert "library/nope" in str(info.value) and "check the image name and tag" in str(info.value)


def test_base_given_as_a_manifest_list_uses_this_platform(
    registry_plain: RegistryServer,
    tmp_path: Path,
    busybox_image: Callable[[RegistryServer], str],
) -> None:
    from bot.pushers.daemonless import host_architecture
    from bot.pushers.registry.manifests import MANIFEST_LIST_V2

    busybox_image(registry_plain)
    other, _ = push(
        registry_plain,
        tmp_path,
        ImageSpec([LayerDir(source_dir(tmp_path, "other"), "/")], ImageConfig()),
        target_for(registry_plain, "library/busybox", "other-arch"),
    )
    client = RegistryClient(
        registry_plain.host,
        "http",
        RegistryAuth(),
        {},
        credentials=RegistryCredentials({}),
        retry=FAST,
    )
    mine = client.get_manifest("library/busybox", "latest")
    index = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": MANIFEST_LIST_V2,
            "manifests": [
                {
                    "mediaType": DOCKER_MANIFEST,
                    "digest": other.digest,
                    "size": other.size,
                    "platform": {"os": "linux", "architecture": "s390x"},
                },
                {
                    "mediaType": DOCKER_MANIFEST,
                    "digest": mine.digest,
                    "size": len(mine.body),
                    "platform": {"os": "linux", "architecture": host_architecture()},
                },
            ],
        }
    ).encode()
    client.put_manifest("library/busybox", "multi", index, MANIFEST_LIST_V2)
    base_ref = parse_image_ref(
        registry_plain.ref("library/busybox", "multi"),
        auth=RegistryAuth(),
        registries=registry_plain.registries,
    )
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "a").write_text("a")
    push(
        registry_plain,
        tmp_path,
        ImageSpec([LayerDir(tmp_path / "app", "/app")], ImageConfig(), base=base_ref),
        target_for(registry_plain, "acme/fromlist", "v1"),
    )
    base_layers = registry_plain.inspect("library/busybox")["Layers"]
    assert registry_plain.inspect("acme/fromlist", "v1")["Layers"][:-1] == base_layers


def test_untrusted_certificate_says_how_to_trust_it(
    registry_htpasswd_tls: RegistryServer, tmp_path: Path
) -> None:
    target = target_for(registry_htpasswd_tls, "acme/untrusted")  # https, no ca_file below
    started = __import__("time").monotonic()
    with pytest.raises(RegistryUnavailable) as info:
        DaemonlessPusher(
            {}, tmp_path / "cache", credentials=RegistryCredentials({}), retry=FAST
        ).push(ImageSpec([LayerDir(source_dir(tmp_path), "/")], ImageConfig()), target, MemoryLog())
    message = str(info.value)
    assert message.startswith(f"TLS certificate of {registry_htpasswd_tls.host} is not trusted (")
    assert f'set [registries."{registry_htpasswd_tls.host}"] ca_file' in message
    assert "Error(" not in message and "_ssl.c" not in message
    assert registry_htpasswd_tls.password not in str(info.value)
    assert __import__("time").monotonic() - started < 5  # no pointless retries


def test_a_web_server_that_is_not_a_registry(tmp_path: Path) -> None:
    import http.server
    import threading

    from bot.errors import RegistryError

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        target = Target(f"127.0.0.1:{server.server_address[1]}", "acme/app", ("v1",), "http")
        with pytest.raises(RegistryError, match="does not look like a registry"):
            DaemonlessPusher(
                {}, tmp_path / "cache", credentials=RegistryCredentials({}), retry=FAST
            ).push(
                ImageSpec([LayerDir(source_dir(tmp_path), "/")], ImageConfig()),
                target,
                MemoryLog(),
            )
    finally:
        server.shutdown()
        server.server_close()


def test_push_with_a_token_service_sending_only_access_token(
    registry_token_tls: RegistryServer, tmp_path: Path
) -> None:
    """OAuth2-style token services answer ``access_token`` without ``token``."""
    issuer = registry_token_tls.issuer
    assert issuer is not None
    issuer.token_fields = ("access_token",)
    try:
        answer = issuer.issue(registry_token_tls.username, ["repository:acme/oauth:pull"])
        assert "token" not in answer and answer["access_token"]
        before = len(issuer.requests)
        result, _ = push(
            registry_token_tls,
            tmp_path,
            ImageSpec([LayerDir(source_dir(tmp_path), "/")], ImageConfig(cmd=["/x"])),
            target_for(registry_token_tls, "acme/oauth", "v1"),
        )
        assert len(issuer.requests) > before  # the push did go through the token service
    finally:
        issuer.token_fields = ("token", "access_token")
    assert registry_token_tls.inspect("acme/oauth", "v1")["Digest"] == result.digest
