"""``bot.pushers.engine.build`` with a fake engine API: what a build is asked for (context,
network, options), its output in the log, the image id it returns, and a failed build as a
step error with the builder's message."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any, cast

import docker
import pytest

from bot.engine import EngineHandle
from bot.errors import StepError
from bot.logs import MemoryLog
from bot.pushers.engine.build import build_image, dockerfile_context


class FakeApi:
    """``APIClient.build``: records its arguments and streams ``lines``."""

    def __init__(self, lines: list[Any]) -> None:
        self.lines = lines
        self.calls: list[dict[str, Any]] = []

    def build(self, **kwargs: Any) -> Iterator[Any]:
        self.calls.append(kwargs)
        yield from self.lines


def engine(api: FakeApi) -> EngineHandle:
    client = cast(docker.DockerClient, SimpleNamespace(api=api))
    return EngineHandle(client, client, network="bot-net")


BUILT = [
    {"stream": "Step 1/1 : FROM scratch\n"},
    "not a dict: skipped",
    {"aux": {"ID": "sha256:" + "1" * 64}},
    {"stream": "Successfully built 111111111111\n"},
]


def test_a_directory_build_returns_the_image_id_and_logs_the_output() -> None:
    api, log = FakeApi(BUILT), MemoryLog()
    image = build_image(engine(api), "/ctx", {"nocache": True}, log)
    assert image == "sha256:" + "1" * 64
    (call,) = api.calls
    assert call["path"] == "/ctx" and "fileobj" not in call
    assert (call["network_mode"], call["nocache"], call["rm"], call["decode"]) == (
        "bot-net",
        True,
        True,
        True,
    )
    assert "Step 1/1 : FROM scratch" in log.text and "Successfully built" in log.text


def test_a_tar_context_is_sent_as_a_custom_context_and_quiet_logs_nothing() -> None:
    api, log = FakeApi(BUILT), MemoryLog()
    build_image(engine(api), b"tar bytes", {}, log, quiet=True)
    (call,) = api.calls
    assert call["custom_context"] is True and call["fileobj"].read() == b"tar bytes"
    assert log.text == ""


@pytest.mark.parametrize(
    ("line", "said"),
    [
        ({"errorDetail": {"message": "COPY failed: no such file"}}, "COPY failed: no such file"),
        ({"error": "The command '/bin/sh -c false' returned 1"}, "returned 1"),
    ],
)
def test_an_error_line_fails_the_step_with_the_builders_message(
    line: dict[str, Any], said: str
) -> None:
    with pytest.raises(StepError, match=r"^docker build failed: ") as caught:
        build_image(engine(FakeApi([{"stream": "Step 1/2\n"}, line])), "/ctx", {}, MemoryLog())
    assert said in str(caught.value)


def test_a_build_without_an_image_id_fails_the_step() -> None:
    with pytest.raises(StepError, match="without an image id"):
        build_image(engine(FakeApi([{"stream": "hm\n"}])), "/ctx", {}, MemoryLog())


def test_dockerfile_context_holds_only_the_dockerfile() -> None:
    with tarfile.open(fileobj=io.BytesIO(dockerfile_context("FROM x\nCMD []\n"))) as tar:
        assert tar.getnames() == ["Dockerfile"]
        member = tar.extractfile("Dockerfile")
        assert member is not None and member.read() == b"FROM x\nCMD []\n"
