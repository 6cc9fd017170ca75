"""The one place an image's runtime config is decided, for both pushers and both runners.

Two halves:

* ``config_from_options``: a push step's expanded options → ``ImageConfig`` (shell words,
  ``K=V`` pairs, ``8080/udp`` ports; secrets refused).
* ``merge_config``: ``ImageConfig`` over a base image's runtime config (the OCI ``config``
  object: ``Env``, ``Cmd``, ``Entrypoint``, ``ExposedPorts``, …) → the pushed image's.
  The daemonless pusher writes the result into the config blob; the engine pusher passes the
  very same dict to ``docker commit`` as ``conf``.

The rules of ``merge_config``, each "unset" meaning ``None`` in ``ImageConfig``:

* ``Entrypoint`` set, ``Cmd`` unset: the base's ``Cmd`` is dropped. This is Dockerfile
  semantics (an ``ENTRYPOINT`` resets the ``CMD`` inherited from the base: the base's
  ``CMD`` was arguments for the base's entrypoint), and what the engine itself does for
  ``docker commit --change 'ENTRYPOINT …'`` and for a commit config with an ``Entrypoint``
  and no ``Cmd``. ``cmd`` only: the base's ``Entrypoint`` stays. Both: both replaced. An
  empty list clears the value.
* ``Env``: merged with the base's by key. The base's entries keep their order (a key the
  base lists twice is kept once, at its first place, with its last value); a key the step
  sets replaces the base's value in place; new keys follow in the step's order. The last
  value given for a key wins everywhere.
* ``ExposedPorts``/``Volumes``: the base's plus the step's (``8080`` means ``8080/tcp``);
  ``Labels``: the base's, then the step's over them.
* ``User``/``WorkingDir``/``StopSignal``: replaced when set.
* Everything else of the base (``Healthcheck``, ``OnBuild``, ``Shell``, …) is kept as is.
"""

from __future__ import annotations

import copy
import re
import shlex
from collections.abc import Mapping
from typing import Any

from bot.errors import StepConfigError
from bot.pushers.model import ImageConfig

_PORT = re.compile(r"^(\d{1,5})(?:/(tcp|udp|sctp))?$")
_SPLIT = re.compile(r"[\s,]+")

# -- options → ImageConfig ---------------------------------------------------------------


def words(option: str, value: str) -> list[str]:
    """``value`` as shell words; a malformed value is a ``StepConfigError`` naming ``option``."""
    try:
        return shlex.split(value)
    except ValueError as err:
        raise StepConfigError(f"option '{option}' is not valid shell words: {err}") from None


def pairs(option: str, value: str) -> dict[str, str]:
    """``K=V`` shell words (a later ``K`` replaces an earlier one); unlike Wercker a missing
    ``=`` is an error rather than a crash, and a value may itself contain ``=``."""
    out: dict[str, str] = {}
    for word in words(option, value):
        key, sep, val = word.partition("=")
        if not sep or not key:
            raise StepConfigError(f"option '{option}': {word!r} is not of the form KEY=value")
        out[key] = val
    return out


def parse_ports(value: str) -> list[str]:
    """``8080, 53/udp`` → ``["8080/tcp", "53/udp"]``."""
    ports: list[str] = []
    for piece in filter(None, _SPLIT.split(value)):
        match = _PORT.match(piece)
        if not match or not 0 < int(match.group(1)) < 65536:
            raise StepConfigError(
                f"option 'ports': {piece!r} is not a port; write e.g. 8080 or 8080/udp"
            )
        ports.append(f"{int(match.group(1))}/{match.group(2) or 'tcp'}")
    return ports


def port_key(port: str) -> str:
    """The ``ExposedPorts`` key of a port: ``8080`` is ``8080/tcp``."""
    port = port.strip()
    return port if "/" in port else f"{port}/tcp"


def config_from_options(
    options: Mapping[str, str], labels: Mapping[str, str], secrets: Mapping[str, str]
) -> ImageConfig:
    """The ``ImageConfig`` of a push step. ``labels`` are the defaults (the OCI labels of
    the build) that the ``labels`` option may override. ``cmd``/``entrypoint`` are
    shlex-split and were not expanded (as in Wercker). Raises ``StepConfigError`` for
    malformed values, and when a secret's value would end up in the image config: secrets
    never enter an image."""
    all_labels = {k: v for k, v in labels.items() if v}
    all_labels.update(pairs("labels", options.get("labels", "")))
    config = ImageConfig(
        cmd=words("cmd", options["cmd"]) if options.get("cmd") else None,
        entrypoint=words("entrypoint", options["entrypoint"])
        if options.get("entrypoint")
        else None,
        env=pairs("env", options.get("env", "")),
        ports=parse_ports(options.get("ports", "")),
        volumes=[v for v in _SPLIT.split(options.get("volumes", "")) if v],
        labels=all_labels,
        user=options.get("user") or None,
        working_dir=options.get("working-dir") or None,
        stop_signal=options.get("stopsignal") or None,
        author=options.get("author") or None,
        message=options.get("message") or None,
    )
    refuse_secrets(config, secrets)
    return config


def refuse_secrets(config: ImageConfig, secrets: Mapping[str, str]) -> None:
    """Raises ``StepConfigError`` when the value of a secret (or one line of a multi-line
    one) appears in any field of ``config``."""
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


# -- ImageConfig over a base config ------------------------------------------------------


def merge_env(base: list[str], env: Mapping[str, str]) -> list[str]:
    """``base`` (``K=V`` strings) merged with ``env`` by key (see the module's rules). An
    entry of the base without ``=`` is kept as written."""
    merged: dict[str, str] = {}
    for item in base:
        merged[item.partition("=")[0]] = item
    for key, value in env.items():
        merged[key] = f"{key}={value}"
    return list(merged.values())


def merge_config(base: Mapping[str, Any] | None, config: ImageConfig) -> dict[str, Any]:
    """The runtime config of the pushed image: ``config`` over ``base`` (a base image's
    runtime config, or ``None`` for none), by the module's rules. Keys whose value is
    ``None`` are left out; ``base`` is not changed."""
    run: dict[str, Any] = copy.deepcopy(dict(base or {}))
    if config.env or run.get("Env") is not None:
        run["Env"] = merge_env(list(run.get("Env") or []), config.env)
    if config.entrypoint is not None:
        run["Entrypoint"] = list(config.entrypoint) or None
        if config.cmd is None:
            run["Cmd"] = None
    if config.cmd is not None:
        run["Cmd"] = list(config.cmd) or None
    if config.ports:
        ports: dict[str, Any] = {port_key(p): {} for p in run.get("ExposedPorts") or {}}
        ports.update({port_key(p): {} for p in config.ports})
        run["ExposedPorts"] = ports
    if config.volumes:
        volumes: dict[str, Any] = {v: {} for v in run.get("Volumes") or {}}
        volumes.update({v: {} for v in config.volumes})
        run["Volumes"] = volumes
    if config.labels:
        run["Labels"] = {**(run.get("Labels") or {}), **config.labels}
    for value, key in (
        (config.user, "User"),
        (config.working_dir, "WorkingDir"),
        (config.stop_signal, "StopSignal"),
    ):
        if value is not None:
            run[key] = value
    return {k: v for k, v in run.items() if v is not None}
