"""``WWW-Authenticate`` parsing (RFC 7235 as registries write it)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_PARAM = re.compile(r'\s*([A-Za-z0-9_-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))\s*,?')


@dataclass(frozen=True)
class Challenge:
    """One auth challenge. ``scheme`` is lower-case (``basic``/``bearer``); ``scopes`` are
    the space-separated entries of the ``scope`` parameter, in order."""

    scheme: str
    params: dict[str, str] = field(default_factory=dict)

    @property
    def realm(self) -> str:
        return self.params.get("realm", "")

    @property
    def service(self) -> str:
        return self.params.get("service", "")

    @property
    def error(self) -> str:
        return self.params.get("error", "")

    @property
    def scopes(self) -> list[str]:
        return self.params.get("scope", "").split()


def parse_challenges(header: str) -> list[Challenge]:
    """All challenges in a ``WWW-Authenticate`` value; unknown text is skipped, never fatal.

    ``Bearer realm="https://a/token",service="reg",scope="repository:x:push,pull
    repository:y:pull"`` gives one bearer challenge with two scopes. Commas inside quoted
    values (``push,pull``) are kept.
    """
    out: list[Challenge] = []
    pos = 0
    header = header or ""
    scheme_re = re.compile(r"\s*,?\s*([A-Za-z][A-Za-z0-9_-]*)(?=\s|$)")
    while pos < len(header):
        match = scheme_re.match(header, pos)
        if not match:
            break
        scheme = match.group(1).lower()
        pos = match.end()
        params: dict[str, str] = {}
        while pos < len(header):
            param = _PARAM.match(header, pos)
            if not param:
                break
            # a bare word followed by a space and a key=value starts the next challenge
            name = param.group(1)
            value = param.group(2) if param.group(2) is not None else param.group(3) or ""
            params[name.lower()] = re.sub(r"\\(.)", r"\1", value)
            pos = param.end()
        out.append(Challenge(scheme, params))
    return out


def pick_challenge(header: str) -> Challenge | None:
    """The challenge to answer: Bearer if offered (it carries scopes), else Basic."""
    challenges = parse_challenges(header)
    for wanted in ("bearer", "basic"):
        for challenge in challenges:
            if challenge.scheme == wanted:
                return challenge
    return None
