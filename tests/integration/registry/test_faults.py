"""Retries and restarts, through a fault-injecting proxy in front of a real registry."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from bot.errors import RegistryError, RegistryUnavailable
from bot.logs import MemoryLog
from bot.pushers.credentials import RegistryCredentials
from bot.pushers.daemonless import DaemonlessPusher
from bot.pushers.model import ImageConfig, ImageSpec, LayerDir, Target
from bot.pushers.registry.client import RetryPolicy
from tests.harness.fault_proxy import FaultProxy
from tests.harness.registry import RegistryServer, free_port

FAST = RetryPolicy(attempts=4, backoff=0.05, factor=2)
UPLOAD = r"/blobs/uploads/"


def push_through(
    proxy: FaultProxy,
    tmp_path: Path,
    repository: str,
    size: int = 300_000,
    stream: bool = False,
    log: MemoryLog | None = None,
    retry: RetryPolicy = FAST,
) -> str:
    """Pushes one layer through ``proxy``; ``stream=False`` (the default here) uploads it
    from the temp file, the path these fault tests were written for (tests of the streaming
    path are in test_streaming.py). ``log`` receives the build log."""
    src = tmp_path / "src"
    src.mkdir(exist_ok=True)
    (src / "data.bin").write_bytes(bytes(range(256)) * (size // 256))
    (src / "random.bin").write_bytes(__import__("os").urandom(size))
    target = Target(proxy.host, repository, ("v1",), "http")
    pusher = DaemonlessPusher(
        {},
        tmp_path / "cache",
        credentials=RegistryCredentials({}),
        retry=retry,
        stream_uploads=stream,
    )
    return pusher.push(
        ImageSpec([LayerDir(src, "/")], ImageConfig(cmd=["/x"])),
        target,
        log if log is not None else MemoryLog(),
    ).digest


def assert_stored(registry: RegistryServer, repository: str, digest: str) -> None:
    assert registry.inspect(repository, "v1")["Digest"] == digest


def test_connection_dropped_mid_upload_restarts_from_post(
    fault_proxy: FaultProxy, registry_plain: RegistryServer, tmp_path: Path
) -> None:
    fault_proxy.add("PUT", UPLOAD, "drop", only_with_body=True)
    digest = push_through(fault_proxy, tmp_path, "faults/drop")
    assert fault_proxy.count("PUT", UPLOAD, 0) == 1
    # layer: POST, dropped PUT, POST again, PUT; config: POST, PUT
    assert fault_proxy.count("POST", UPLOAD) == 3
    assert_stored(registry_plain, "faults/drop", digest)


def test_503_then_200_is_retried(
    fault_proxy: FaultProxy, registry_plain: RegistryServer, tmp_path: Path
) -> None:
    fault_proxy.add("PUT", r"/manifests/", "status", status=503)
    fault_proxy.add("HEAD", r"/blobs/", "status", status=502)
    digest = push_through(fault_proxy, tmp_path, "faults/busy")
    assert fault_proxy.count("PUT", r"/manifests/", 503) == 1
    assert fault_proxy.count("PUT", r"/manifests/", 201) == 1
    assert fault_proxy.count("HEAD", r"/blobs/", 502) == 1
    assert_stored(registry_plain, "faults/busy", digest)


def test_429_waits_for_retry_after(
    fault_proxy: FaultProxy, registry_plain: RegistryServer, tmp_path: Path
) -> None:
    fault_proxy.add(
        "PUT",
        r"/manifests/",
        "status",
        status=429,
        headers={"Retry-After": "1"},
        body=b'{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}',
    )
    started = time.monotonic()
    digest = push_through(fault_proxy, tmp_path, "faults/ratelimited")
    assert time.monotonic() - started >= 1.0  # FAST backoff alone would be 0.05 s
    assert fault_proxy.count("PUT", r"/manifests/", 429) == 1
    assert_stored(registry_plain, "faults/ratelimited", digest)


def test_lost_upload_session_restarts_the_blob(
    fault_proxy: FaultProxy, registry_plain: RegistryServer, tmp_path: Path
) -> None:
    fault_proxy.add("PUT", UPLOAD, "lose_upload", only_with_body=True)
    digest = push_through(fault_proxy, tmp_path, "faults/lost")
    assert fault_proxy.count("PUT", UPLOAD, 404) == 1
    assert fault_proxy.count("POST", UPLOAD) == 3
    assert_stored(registry_plain, "faults/lost", digest)


def test_put_with_body_refused_falls_back_to_patch(
    fault_proxy: FaultProxy, registry_plain: RegistryServer, tmp_path: Path
) -> None:
    fault_proxy.add("PUT", UPLOAD, "status", times=99, status=405, only_with_body=True)
    digest = push_through(fault_proxy, tmp_path, "faults/patch")
    assert fault_proxy.count("PATCH", UPLOAD, 202) == 2  # layer and config
    assert fault_proxy.count("PUT", UPLOAD, 405) == 1  # the mode sticks for the push
    assert_stored(registry_plain, "faults/patch", digest)


def test_answer_lost_after_the_manifest_landed_is_fine(
    fault_proxy: FaultProxy, registry_plain: RegistryServer, tmp_path: Path
) -> None:
    fault_proxy.add("PUT", r"/manifests/", "after", status=502)
    digest = push_through(fault_proxy, tmp_path, "faults/landed")
    assert_stored(registry_plain, "faults/landed", digest)


def test_registry_that_keeps_failing_is_unavailable(
    fault_proxy: FaultProxy, tmp_path: Path
) -> None:
    fault_proxy.add(
        "PUT", r"/manifests/", "status", times=99, status=503, body=b"upstream overloaded"
    )
    with pytest.raises(RegistryUnavailable) as info:
        push_through(fault_proxy, tmp_path, "faults/down")
    assert fault_proxy.host in str(info.value) and "faults/down" in str(info.value)
    assert "upstream overloaded" in str(info.value)
    assert fault_proxy.count("PUT", r"/manifests/", 503) == FAST.attempts


def test_401_on_the_body_put_resends_a_reopened_body(
    fault_proxy: FaultProxy, registry_plain: RegistryServer, tmp_path: Path
) -> None:
    """A token refused while the body is in flight: after re-auth the PUT goes again to the
    same upload session with a freshly opened file, not the spent stream (dxf's bug: an empty
    retry and DIGEST_INVALID); the registry checks the digest of what arrived."""
    fault_proxy.add(
        "PUT",
        UPLOAD,
        "status",
        status=401,
        only_with_body=True,
        headers={"WWW-Authenticate": 'Basic realm="proxy"'},
    )
    digest = push_through(fault_proxy, tmp_path, "faults/reauth")
    assert fault_proxy.count("PUT", UPLOAD, 401) == 1
    assert fault_proxy.count("PUT", UPLOAD, 201) == 2  # layer + config
    assert fault_proxy.count("POST", UPLOAD) == 2  # the session survived the 401
    assert_stored(registry_plain, "faults/reauth", digest)


# --- the manifest digest must be confirmed (behaviour §7) ----------------------------------

MANIFEST = r"/v2/.+/manifests/"


def test_missing_digest_header_is_confirmed_with_head(
    fault_proxy: FaultProxy, registry_plain: RegistryServer, tmp_path: Path
) -> None:
    fault_proxy.add("PUT", MANIFEST, "header", headers={"Docker-Content-Digest": None})
    digest = push_through(fault_proxy, tmp_path, "faults/noheader")
    # one HEAD before the PUT (is the tag already there?), one after it to confirm
    assert fault_proxy.count("HEAD", r"/manifests/v1$") == 2
    assert_stored(registry_plain, "faults/noheader", digest)


def test_missing_digest_header_and_head_naming_another_digest_fails(
    fault_proxy: FaultProxy, registry_plain: RegistryServer, tmp_path: Path
) -> None:
    other = "sha256:" + "ab" * 32
    fault_proxy.add("PUT", MANIFEST, "header", headers={"Docker-Content-Digest": None})
    fault_proxy.add("HEAD", MANIFEST, "header", times=10, headers={"Docker-Content-Digest": other})
    with pytest.raises(RegistryError) as info:
        push_through(fault_proxy, tmp_path, "faults/otherdigest")
    message = str(info.value)
    assert other in message
    ours = registry_plain.inspect("faults/otherdigest", "v1")["Digest"]
    assert ours in message and "did not confirm" in message


def test_digest_never_confirmed_fails_naming_ours(
    fault_proxy: FaultProxy, registry_plain: RegistryServer, tmp_path: Path
) -> None:
    fault_proxy.add("PUT", MANIFEST, "header", headers={"Docker-Content-Digest": None})
    fault_proxy.add("HEAD", MANIFEST, "header", times=10, headers={"Docker-Content-Digest": None})
    log = MemoryLog()
    with pytest.raises(RegistryError) as info:
        push_through(fault_proxy, tmp_path, "faults/unconfirmed", log=log)
    message = str(info.value)
    ours = registry_plain.inspect("faults/unconfirmed", "v1")["Digest"]
    assert ours in message and "named no digest" in message and "not confirmed" in message
    # each HEAD asked again is announced, with its wait
    for attempt, wait in ((2, "0.05 s"), (3, "0.1 s")):
        line = (
            f"{fault_proxy.host} named no digest for faults/unconfirmed:v1 yet (HEAD); asking "
            f"again in {wait} (attempt {attempt} of 3)"
        )
        assert line in log.text, log.text


def test_rewritten_digest_header_fails_naming_both(
    fault_proxy: FaultProxy, registry_plain: RegistryServer, tmp_path: Path
) -> None:
    other = "sha256:" + "cd" * 32
    fault_proxy.add("PUT", MANIFEST, "header", headers={"Docker-Content-Digest": other})
    with pytest.raises(RegistryError) as info:
        push_through(fault_proxy, tmp_path, "faults/rewritten")
    ours = registry_plain.inspect("faults/rewritten", "v1")["Digest"]
    assert other in str(info.value) and ours in str(info.value)


def test_403_denied_names_the_robot_account_and_not_its_token(
    fault_proxy: FaultProxy, tmp_path: Path
) -> None:
    """quay.io answers a robot account without write permission with 403 DENIED."""
    from bot.errors import RegistryAuthError
    from bot.pushers.model import RegistryAuth

    robot_token = "R0BOT-T0KEN-0123456789ABCDEF"
    fault_proxy.add(
        "POST",
        UPLOAD,
        "status",
        times=20,
        status=403,
        headers={"Content-Type": "application/json"},
        body=b'{"errors":[{"code":"DENIED","message":"requested access to the resource is '
        b'denied"}]}',
    )
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_text("a")
    target = Target(
        fault_proxy.host, "acme/app", ("v1",), "http", RegistryAuth("acme+ci", robot_token)
    )
    pusher = DaemonlessPusher(
        {}, tmp_path / "cache", credentials=RegistryCredentials({}), retry=FAST
    )
    with pytest.raises(RegistryAuthError) as info:
        pusher.push(ImageSpec([LayerDir(src, "/")], ImageConfig()), target, MemoryLog())
    message = str(info.value)
    assert message.startswith(f"{fault_proxy.host} denied push to acme/app for acme+ci: ")
    assert message.endswith("; the credentials are valid but lack write permission")
    assert robot_token not in message


# --- every retry is in the build log (finding 11) -----------------------------------------


def warnings_in(log: MemoryLog) -> list[str]:
    prefix = "[wercker-bot] warning: "
    return [line[len(prefix) :] for line in log.text.splitlines() if line.startswith(prefix)]


def test_every_retry_is_announced_in_the_build_log_with_cause_wait_and_attempt(
    fault_proxy: FaultProxy, registry_plain: RegistryServer, tmp_path: Path
) -> None:
    """A push that met a busy ping, a 429 with Retry-After, a dropped upload and a 503 on
    the manifest succeeds, and its build log says what happened each time, how long the
    bot waited and which attempt of how many followed."""
    host, repo = fault_proxy.host, "faults/logged"
    fault_proxy.add("GET", r"^/v2/$", "status", status=503, body=b"warming up")
    fault_proxy.add(
        "POST",
        UPLOAD,
        "status",
        status=429,
        headers={"Retry-After": "1", "Content-Type": "application/json"},
        body=b'{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}',
    )
    fault_proxy.add("PUT", UPLOAD, "drop", only_with_body=True)
    fault_proxy.add("PUT", MANIFEST, "status", status=503, body=b"upstream overloaded")
    log = MemoryLog()
    digest = push_through(fault_proxy, tmp_path, repo, log=log)
    assert_stored(registry_plain, repo, digest)
    lines = warnings_in(log)
    assert (
        f"{host} answered HTTP 503 (warming up) to GET /v2/; retrying in 0.05 s (attempt 2 of 4)"
    ) in lines, lines
    assert (
        f"{host} answered HTTP 429 (TOOMANYREQUESTS: slow down) to POST "
        f"/v2/{repo}/blobs/uploads/; retrying in 1 s, as its Retry-After asks (attempt 2 of 4)"
    ) in lines, lines
    dropped = [line for line in lines if line.startswith("upload of blob sha256:")]
    assert len(dropped) == 1, lines
    assert re.fullmatch(
        rf"upload of blob sha256:[0-9a-f]{{12}}… to {repo} failed: {re.escape(host)} closed the "
        r"connection; uploading it again from the start in 0\.05 s \(attempt 2 of 4\)",
        dropped[0],
    ), dropped
    assert (
        f"{host} answered HTTP 503 (upstream overloaded) to PUT /v2/{repo}/manifests/v1; "
        "retrying in 0.05 s (attempt 2 of 4)"
    ) in lines, lines
    assert len(lines) == 4, lines  # one line per retry, nothing else


def test_retry_after_longer_than_the_longest_wait_says_so(
    fault_proxy: FaultProxy, registry_plain: RegistryServer, tmp_path: Path
) -> None:
    fault_proxy.add("PUT", MANIFEST, "status", status=429, headers={"Retry-After": "120"})
    log = MemoryLog()
    policy = RetryPolicy(attempts=3, backoff=0.05, factor=2, max_wait=0.2)
    push_through(fault_proxy, tmp_path, "faults/longwait", log=log, retry=policy)
    assert (
        "retrying in 0.2 s (its Retry-After asked for 120 s; we wait at most 0.2 s) "
        "(attempt 2 of 3)"
    ) in log.text, log.text


def test_unreachable_registry_announces_each_retry_before_its_error(tmp_path: Path) -> None:
    """Nothing listens: every retry is in the log as it happens (no long silence), and no
    wait follows the last try."""
    host = f"127.0.0.1:{free_port()}"
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_text("a")
    policy = RetryPolicy(attempts=4, backoff=0.1, factor=3)
    pusher = DaemonlessPusher(
        {}, tmp_path / "cache", credentials=RegistryCredentials({}), retry=policy
    )
    log = MemoryLog()
    started = time.monotonic()
    with pytest.raises(RegistryUnavailable) as info:
        pusher.push(
            ImageSpec([LayerDir(src, "/")], ImageConfig()),
            Target(host, "acme/app", ("v1",), "http"),
            log,
        )
    took = time.monotonic() - started
    assert "connection refused" in str(info.value)
    assert warnings_in(log) == [
        f"cannot connect to {host} (connection refused); retrying in {wait} (attempt {n} of 4)"
        for n, wait in ((2, "0.1 s"), (3, "0.3 s"), (4, "0.9 s"))
    ], log.text
    # 0.1 + 0.3 + 0.9 s of waits; the old loop also slept 2.7 s after its last try
    assert took < 2.5, took
