"""Turns a push step's expanded options into an ``ImageConfig`` (shared by both push steps
and both runners, so the same wercker.yml gives the same image config everywhere)."""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping

from bot.errors import StepConfigError
from bot.pushers.model import ImageConfig
from steps.base import BuildFacts

_PORT = re.compile(r"^(\d{1,5})(?:/(tcp|udp|sctp))?$")
_SPLIT = re.compile(r"[\s,]+")


def words(option: str, value: str) -> list[str]:
    try:
        return shlex.split(value)
    except ValueError as err:
        raise StepConfigError(f"option '{option}' is not valid shell words: {err}") from None


def pairs(option: str, value: str) -> dict[str, str]:
    """``K=V`` shell words; unlike Wercker a missing ``=`` is an error rather than a crash,
    and a value may itself contain ``=``."""
    out: dict[str, str] = {}
    for word in words(option, value):
        key, sep, val = word.partition("=")
        if not sep or not key:
            raise StepConfigError(f"option '{option}': {word!r} is not of the form KEY=value")
        out[key] = val
    return out


def parse_ports(value: str) -> list[str]:
    ports: list[str] = []
    for piece in filter(None, _SPLIT.split(value)):
        match = _PORT.match(piece)
        if not match or not 0 < int(match.group(1)) < 65536:
            raise StepConfigError(
                f"option 'ports': {piece!r} is not a port; write e.g. 8080 or 8080/udp"
            )
        ports.append(f"{int(match.group(1))}/{match.group(2) or 'tcp'}")
    return ports


def image_config(
    options: Mapping[str, str], facts: BuildFacts, secrets: Mapping[str, str]
) -> ImageConfig:
    """Builds the image config. ``cmd``/``entrypoint`` are shlex-split and were not expanded
    (as in Wercker). Raises ``StepConfigError`` for malformed values, and when a secret's
    value would end up in the image config: secrets never enter an image."""
    labels = {
        "org.opencontainers.image.revision": facts.commit,
        "org.opencontainers.image.source": facts.source_url,
        "org.opencontainers.image.created": facts.created,
    }
    labels = {k: v for k, v in labels.items() if v}
    labels.update(pairs("labels", options.get("labels", "")))
    config = ImageConfig(
        cmd=words("cmd", options["cmd"]) if options.get("cmd") else None,
        entrypoint=words("entrypoint", options["entrypoint"])
        if options.get("entrypoint")
        else None,
        env=pairs("env", options.get("env", "")),
        ports=parse_ports(options.get("ports", "")),
        volumes=[v for v in _SPLIT.split(options.get("volumes", "")) if v],
        labels=labels,
        user=options.get("user") or None,
        working_dir=options.get("working-dir") or None,
        stop_signal=options.get("stopsignal") or None,
        author=options.get("author") or None,
        message=options.get("message") or None,
    )
    _refuse_secrets(config, secrets)
    return config


def _refuse_secrets(config: ImageConfig, secrets: Mapping[str, str]) -> None:
    texts = {
        "cmd": " ".join(config.cmd or []),
        "entrypoint": " ".join(config.entrypoint or []),
        "env": " ".join(f"{k}={v}" for k, v in config.env.items()),
        "labels": " ".join(f"{k}={v}" for k, v in config.labels.items()),
        "ports": " ".join(config.ports),
        "volumes": " ".join(config.volumes),
        "user": config.user or "",
        "working-dir": config.working_dir or "",
        "stopsignal": config.stop_signal or "",
        "author": config.author or "",
        "message": config.message or "",
    }
    for name, value in secrets.items():
        # Each line of a multi-line secret (a JSON key, a PEM) counts on its own.
        needles = [v for v in {value, *value.splitlines()} if len(v.strip()) >= 4]
        for option, text in texts.items():
            if any(needle in text for needle in needles):
                raise StepConfigError(
                    f"option '{option}' would put the secret {name} into the image config; "
                    "secrets never enter an image: pass it at run time instead"
                )
