"""``bot.pushers.image_config``: options → ``ImageConfig``, and ``merge_config``, the one rule
both pushers apply (the daemonless config blob and the engine's commit ``conf`` are checked
to be exactly its output)."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any, cast

import docker
import pytest

from bot.engine import BoxSnapshot, EngineHandle
from bot.errors import StepConfigError
from bot.logs import MemoryLog
from bot.pushers.credentials import RegistryCredentials
from bot.pushers.engine import BuiltImage, EngineImage, EnginePusher
from bot.pushers.image_config import config_from_options, merge_config, merge_env
from bot.pushers.model import ImageConfig, Target
from bot.pushers.registry.image import build_config

BASE: dict[str, Any] = {
    "Env": ["PATH=/bin", "DUP=first", "LANG=C", "DUP=second"],
    "Cmd": ["sh"],
    "Entrypoint": None,
    "ExposedPorts": {"80/tcp": {}},
    "Volumes": {"/data": {}},
    "Labels": {"team": "base", "base": "1"},
    "User": "app",
    "WorkingDir": "/srv",
    "OnBuild": None,
    "Healthcheck": {"Test": ["CMD", "true"]},
}
ENTRYPOINT_BASE = {**BASE, "Entrypoint": ["/base-entry"], "Cmd": ["--flag"]}


def options(**values: str) -> ImageConfig:
    return config_from_options({k.replace("_", "-"): v for k, v in values.items()}, {}, {})


# (name, base, the step's options, what the merged config must hold)
CASES: list[tuple[str, dict[str, Any], dict[str, str], dict[str, Any]]] = [
    ("entrypoint only", BASE, {"entrypoint": "/app --serve"},
     {"Entrypoint": ["/app", "--serve"], "Cmd": None}),
    ("entrypoint only over a base entrypoint", ENTRYPOINT_BASE, {"entrypoint": "/app"},
     {"Entrypoint": ["/app"], "Cmd": None}),
    ("cmd only", BASE, {"cmd": "cat /etc/motd"}, {"Entrypoint": None, "Cmd": ["cat", "/etc/motd"]}),
    ("cmd only keeps the base entrypoint", ENTRYPOINT_BASE, {"cmd": "--other"},
     {"Entrypoint": ["/base-entry"], "Cmd": ["--other"]}),
    ("both", ENTRYPOINT_BASE, {"entrypoint": "/app", "cmd": "serve --port 80"},
     {"Entrypoint": ["/app"], "Cmd": ["serve", "--port", "80"]}),
    ("neither keeps the base's", ENTRYPOINT_BASE, {},
     {"Entrypoint": ["/base-entry"], "Cmd": ["--flag"]}),
    ("duplicate env keys", BASE, {"env": "DUP=x NEW=1 DUP=y LANG=C.UTF-8"},
     {"Env": ["PATH=/bin", "DUP=y", "LANG=C.UTF-8", "NEW=1"]}),
    ("duplicate env keys of the base alone", BASE, {"env": "NEW=1"},
     {"Env": ["PATH=/bin", "DUP=second", "LANG=C", "NEW=1"]}),
    ("ports with protocols", BASE, {"ports": "8080/udp 8080 9000/sctp 80"},
     {"ExposedPorts": {"80/tcp": {}, "8080/udp": {}, "8080/tcp": {}, "9000/sctp": {}}}),
    ("labels", BASE, {"labels": "team=ci 'two words'=yes"},
     {"Labels": {"team": "ci", "base": "1", "two words": "yes"}}),
    ("user, working dir, stop signal, volumes", BASE,
     {"user": "65534", "working_dir": "/app", "stopsignal": "SIGINT", "volumes": "/cache"},
     {"User": "65534", "WorkingDir": "/app", "StopSignal": "SIGINT",
      "Volumes": {"/data": {}, "/cache": {}}}),
]  # fmt: skip


@pytest.mark.parametrize(
    ("base", "step", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_merge_config(base: dict[str, Any], step: dict[str, str], expected: dict[str, Any]) -> None:
    before = copy.deepcopy(base)
    merged = merge_config(base, options(**step))
    for key, value in expected.items():
        assert merged.get(key) == value, key
    assert base == before  # the base is never changed
    assert merged["Healthcheck"] == base["Healthcheck"]  # what the step cannot set stays
    assert None not in merged.values()


def test_unset_config_changes_nothing_but_duplicate_base_env() -> None:
    merged = merge_config(BASE, ImageConfig())
    assert merged == {
        **{k: v for k, v in BASE.items() if v is not None},
        "Env": ["PATH=/bin", "DUP=second", "LANG=C"],
    }


def test_no_base_gives_only_what_the_step_set() -> None:
    assert merge_config(None, ImageConfig(cmd=["/hello"])) == {"Cmd": ["/hello"]}
    assert merge_config(None, options(entrypoint="/app", ports="53/udp")) == {
        "Entrypoint": ["/app"],
        "ExposedPorts": {"53/udp": {}},
    }


def test_empty_lists_clear_cmd_and_entrypoint() -> None:
    merged = merge_config(ENTRYPOINT_BASE, ImageConfig(cmd=[], entrypoint=[]))
    assert "Cmd" not in merged and "Entrypoint" not in merged


def test_merge_env_keeps_entries_without_a_value_and_the_last_value() -> None:
    assert merge_env(["A=1", "FLAG", "A=2"], {"B": "x=y"}) == ["A=2", "FLAG", "B=x=y"]


def test_env_option_duplicate_keys_last_wins() -> None:
    assert options(env="A=1 B=2 A=3").env == {"A": "3", "B": "2"}


def test_default_labels_yield_to_the_labels_option_and_empty_ones_are_dropped() -> None:
    config = config_from_options({"labels": "rev=mine"}, {"rev": "abc", "src": ""}, {})
    assert config.labels == {"rev": "mine"}


def test_a_secret_never_enters_the_config() -> None:
    with pytest.raises(StepConfigError, match="secret TOKEN"):
        config_from_options({"labels": "x=tok-123456"}, {}, {"TOKEN": "tok-123456"})


# -- both pushers apply exactly merge_config -------------------------------------------------


@pytest.mark.parametrize(
    ("base", "step", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_the_daemonless_config_blob_holds_merge_config(
    base: dict[str, Any], step: dict[str, str], expected: dict[str, Any]
) -> None:
    config = options(**step)
    blob = json.loads(build_config(config, [], base={"config": base}))
    assert blob["config"] == merge_config(base, config)


class FakeApi:
    """The engine calls of a commit and a push; ``commits`` records each commit's ``conf``."""

    def __init__(self, image_config: dict[str, Any]) -> None:
        self.image_config = image_config
        self.commits: list[dict[str, Any]] = []

    def commit(self, container: str, conf: dict[str, Any], **kwargs: Any) -> dict[str, str]:
        self.commits.append(conf)
        return {"Id": f"sha256:committed{len(self.commits)}"}

    def inspect_image(self, ref: str) -> dict[str, Any]:
        return {"Config": self.commits[-1] if self.commits else self.image_config}

    def create_container(self, image: str, **kwargs: Any) -> dict[str, str]:
        return {"Id": "c1"}

    def remove_container(self, container: str, **kwargs: Any) -> None:
        pass

    def tag(self, image: str, repo: str, tag: str, force: bool = False) -> None:
        pass

    def push(self, repo: str, tag: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
        yield {"aux": {"Tag": tag, "Digest": "sha256:" + "d" * 64, "Size": 1}}

    def remove_image(self, ref: str, **kwargs: Any) -> None:
        pass


def engine(api: FakeApi) -> EngineHandle:
    client = cast(docker.DockerClient, SimpleNamespace(api=api))
    return EngineHandle(client, client)


@pytest.mark.parametrize(
    ("base", "step", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_the_engine_commits_the_box_with_merge_config(
    base: dict[str, Any], step: dict[str, str], expected: dict[str, Any]
) -> None:
    api = FakeApi({})
    config = options(**step)
    box = BoxSnapshot(engine(api), "box1", base, "wercker-bot-build/box1-")
    EnginePusher(RegistryCredentials({})).push(
        EngineImage(box, config), Target("127.0.0.1:5000", "a/b", ("v1",)), MemoryLog()
    )
    assert api.commits == [merge_config(base, config)]


@pytest.mark.parametrize(
    ("base", "step", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_the_engine_applies_merge_config_to_a_built_image(
    base: dict[str, Any], step: dict[str, str], expected: dict[str, Any]
) -> None:
    api = FakeApi(base)
    config = options(**step)
    built = BuiltImage(engine(api), "sha256:built")
    EnginePusher(RegistryCredentials({})).push(
        EngineImage(built, config), Target("127.0.0.1:5000", "a/b", ("v1",)), MemoryLog()
    )
    assert api.commits == [merge_config(base, config)]
