"""Running a ``docker build`` on the engine (``internal/docker-build``, and the one-line
builds the engine pusher uses to clear an inherited command)."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterable, Iterator
from typing import Any

from bot.engine import EngineHandle
from bot.errors import StepError
from bot.logs import Log


def build_image(
    engine: EngineHandle,
    context: bytes | Iterable[bytes] | str,
    options: dict[str, Any],
    log: Log,
    *,
    quiet: bool = False,
) -> str:
    """Runs a build on the engine and returns the image id. ``context`` is a directory
    path or a tar; ``options`` are extra ``APIClient.build`` keyword arguments. Build output
    goes to ``log``; an error line fails the step (``StepError``) with the builder's message."""
    kwargs: dict[str, Any] = {
        "rm": True,
        "forcerm": True,
        "decode": True,
        "network_mode": engine.network,
        **options,
    }
    if isinstance(context, str):
        kwargs["path"] = context
    else:
        kwargs["fileobj"] = io.BytesIO(context) if isinstance(context, bytes) else context
        kwargs["custom_context"] = True
    image_id = ""
    for line in _lines(engine.stream.api.build(**kwargs)):
        if "error" in line or "errorDetail" in line:
            detail = line.get("errorDetail") or {}
            raise StepError(f"docker build failed: {detail.get('message') or line.get('error')}")
        aux = line.get("aux")
        if isinstance(aux, dict) and aux.get("ID"):
            image_id = str(aux["ID"])
        if "stream" in line and not quiet:
            log.output(str(line["stream"]))
    if not image_id:
        raise StepError("docker build finished without an image id")
    return image_id


def dockerfile_context(dockerfile: str) -> bytes:
    """A build context (a tar) holding only ``dockerfile`` as ``Dockerfile``."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        data = dockerfile.encode()
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _lines(stream: Iterable[Any]) -> Iterator[dict[str, Any]]:
    for line in stream:
        if isinstance(line, dict):
            yield line
