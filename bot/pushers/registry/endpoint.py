"""Where requests for a named registry really go: scheme(s), host and TLS verification."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from bot.pushers.model import Scheme
from bot.pushers.target import default_scheme, is_loopback, registry_settings_for, split_host_port
from bot.settings import RegistrySettings


@dataclass(frozen=True)
class Endpoint:
    """``name`` is the registry as images name it; ``host`` is where requests go (another
    host when a ``[registries]`` entry is ``mirror_of`` it). ``schemes`` are tried in order
    (``auto`` gives https then http). ``verify`` is for ``requests``: a CA file path, True, or
    False for loopback/``insecure`` hosts tried over HTTPS."""

    name: str
    host: str
    schemes: tuple[str, ...]
    verify: bool | str
    settings: RegistrySettings | None

    @property
    def is_loopback(self) -> bool:
        return is_loopback(split_host_port(self.host)[0])


def resolve_endpoint(
    name: str, scheme: Scheme, registries: Mapping[str, RegistrySettings]
) -> Endpoint:
    """Applies ``mirror_of``, ``insecure`` and ``ca_file`` from the bot config to ``name``.

    A mirror is reached with the scheme its own host implies (loopback or ``insecure`` →
    HTTPS falling back to HTTP); the scheme written for the named host is kept otherwise.
    """
    entry = registry_settings_for(name, registries)
    host = name
    if entry is not None and entry.mirror_of and entry.host.lower() != name.lower():
        host = entry.host
        scheme = default_scheme(host, registries)
    schemes: tuple[str, ...] = {"https": ("https",), "http": ("http",)}.get(
        scheme, ("https", "http")
    )
    verify: bool | str = True
    if entry is not None and entry.ca_file:
        verify = entry.ca_file
    elif scheme == "auto" or (entry is not None and entry.insecure):
        verify = False
    return Endpoint(name=name, host=host, schemes=schemes, verify=verify, settings=entry)
