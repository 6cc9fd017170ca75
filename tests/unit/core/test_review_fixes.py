"""Regression tests for problems found in review (one test per problem)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

import bot.build
from bot.checkout import auth_env, split_credentials
from bot.errors import StepConfigError
from bot.logs import MemoryLog
from bot.models import Result
from bot.settings import RegistrySettings
from bot.store import store as store_module
from bot.store.store import NewPush, Store
from steps.base import BuildFacts
from steps.image_options import image_config
from tests.harness.builds import new_push
from tests.integration.test_scenarios import run_scenario

FACTS = BuildFacts("a/b", "main", "", "c" * 40, "", "1", "u", "2026-01-01T00:00:00Z")


def _push(pipelines: list[str], delivery: str = "d") -> NewPush:
    return new_push(pipelines=pipelines, delivery_id=delivery)


def test_clone_url_credentials_travel_as_a_header() -> None:
    url, user, password = split_credentials("https://bot:p%40ss-w0rd@git.example.com/a/b.git")
    assert url == "https://git.example.com/a/b.git" and (user, password) == ("bot", "p@ss-w0rd")
    env = auth_env("https://bot:p%40ss-w0rd@git.example.com/a/b.git", "", None)
    assert env["GIT_CONFIG_KEY_0"] == "http.https://git.example.com/.extraheader"
    assert "p@ss-w0rd" not in " ".join(env.values())  # base64 in a header, never the URL


@pytest.mark.parametrize("option", ["author", "message", "volumes"])
def test_secret_in_any_image_config_field_is_refused(option: str) -> None:
    with pytest.raises(StepConfigError, match="secret KEY"):
        image_config({option: "x line-two-of-key y"}, FACTS, {"KEY": "line-one\nline-two-of-key"})


def test_redelivery_uses_the_builds_own_pipelines(tmp_path: Path) -> None:
    store = Store(tmp_path / "db")
    first = store.record_push(_push(["build", "deploy"]), "u/{id}")
    claim = store.claim_next("w")
    assert claim is not None
    store.finish_attempt(claim.attempt_id, Result.PASSED, "ok")
    store.record_push(_push(["build", "publish"]), "u/{id}")
    contexts = {r["context"] for r in store.statuses_for("acme/app", "a" * 40)}
    assert contexts == {"wb/build", "wb/deploy"} and first.build_id == claim.build["id"]


def test_same_pid_under_an_earlier_token_is_dead(tmp_path: Path) -> None:
    store = Store(tmp_path / "db")
    store.record_push(_push(["build"]), "u/{id}")
    claim = store.claim_next(f"{os.uname().nodename}:{os.getpid()}:oldtoken:w0")
    assert claim is not None
    assert store.recover_dead() == [claim.attempt_id]


def test_stale_heartbeat_is_dead_even_if_the_pid_is_alive(tmp_path: Path) -> None:
    store = Store(tmp_path / "db")
    store.record_push(_push(["build"]), "u/{id}")
    claim = store.claim_next(f"{os.uname().nodename}:{os.getppid()}:tok:w0")
    assert claim is not None
    assert store.recover_dead() == []
    assert store.recover_dead(max_age=-1) == [claim.attempt_id]


def test_current_process_attempts_are_alive(tmp_path: Path) -> None:
    store = Store(tmp_path / "db")
    store.record_push(_push(["build"]), "u/{id}")
    assert store.claim_next(store_module.worker_name("w0")) is not None
    assert store.recover_dead() == []


def test_a_crash_in_deploy_keeps_builds_success(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = bot.build.run_pipeline

    def flaky(spec, *args, **kwargs):  # type: ignore[no-untyped-def]
        if spec.name == "deploy":
            raise OSError("disk full")
        return real(spec, *args, **kwargs)

    monkeypatch.setattr(bot.build, "run_pipeline", flaky)
    yml = "build:\n  steps:\n    - script:\n        code: 'true'\n"
    yml += "deploy:\n  steps:\n    - script:\n        code: 'true'\n"
    got = run_scenario(tmp_path, {"wercker.yml": yml})
    assert got["result"] == "errored"
    assert got["statuses"]["build"].startswith("success")
    assert got["statuses"]["deploy"].startswith("error: internal error: OSError")
    states = [p["state"] for p in got["detail"]["attempts"][0]["pipelines"]]
    assert "running" not in states


def test_local_runner_kills_what_a_step_left_in_the_background(tmp_path: Path) -> None:
    from bot.logs import MemoryLog
    from bot.runners.base import Timeouts, Workspace
    from bot.runners.local import LocalRunner

    ws = Workspace.create(tmp_path / "ws", tmp_path / "cache")
    session = LocalRunner(None).open(None, {}, ws, None, MemoryLog())  # local-unsafe
    pidfile = tmp_path / "bg.pid"
    session.run_script(
        f"sleep 300 >/dev/null 2>&1 &\necho $! > {pidfile}",
        env={},
        secrets={},
        cwd=session.paths.source,
        timeouts=Timeouts(30, 30),
        log=MemoryLog(),
    )
    pid = int(pidfile.read_text())
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        pytest.fail("the background process outlived its step")
    assert oct(ws.helper.stat().st_mode & 0o777) == "0o700"


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
