"""A ``RegistryClient`` on the in-memory registry (``tests/fakes/registry.py``), with its
waits recorded instead of slept and its retry lines in a ``MemoryLog``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests

from bot.logs import MemoryLog
from bot.pushers.credentials import RegistryCredentials
from bot.pushers.model import RegistryAuth, Scheme
from bot.pushers.registry.client import RegistryClient, RetryPolicy
from bot.pushers.registry.transport import Transport
from tests.fakes.registry import FakeRegistry

NOW = 1_800_000_000.0  # the fake clock: an instant, so Retry-After dates are exact


@dataclass
class Harness:
    """What a test drives and inspects: the ``registry``, the build ``log``, and the
    ``sleeps`` the client asked for, in order."""

    registry: FakeRegistry
    log: MemoryLog = field(default_factory=MemoryLog)
    sleeps: list[float] = field(default_factory=list)

    def client(
        self,
        auth: RegistryAuth | None = None,
        attempts: int = 4,
        *,
        scheme: Scheme = "https",
        transport: Transport | None = None,
    ) -> RegistryClient:
        """A client for the registry, over ``transport`` when given (a wrapper around the
        registry that changes some answers), else straight to it."""
        return RegistryClient(
            self.registry.host,
            scheme,
            auth or RegistryAuth(),
            {},
            credentials=RegistryCredentials({}),
            retry=RetryPolicy(attempts=attempts),
            log=self.log,
            transport=transport or self.registry,
            sleep=self.sleeps.append,
            clock=lambda: NOW,
        )

    @property
    def warnings(self) -> list[str]:
        prefix = "[wercker-bot] warning: "
        return [
            line[len(prefix) :] for line in self.log.text.splitlines() if line.startswith(prefix)
        ]


@pytest.fixture
def anonymous() -> Harness:
    return Harness(FakeRegistry())


Before = Callable[[str, str], None]
After = Callable[[str, str, requests.Response], requests.Response]


def _unchanged(method: str, url: str, resp: requests.Response) -> requests.Response:
    return resp


def _let_through(method: str, url: str) -> None:
    return None


@dataclass
class Intercepting:
    """``Transport``: the in-memory ``registry``, with ``before(method, url)`` called first
    (it may raise what a real transport would, such as a TLS error) and every answer passed
    through ``after(method, url, resp)`` (a proxy that drops or changes a header)."""

    registry: FakeRegistry
    before: Before = _let_through
    after: After = _unchanged

    def request(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        self.before(method, url)
        return self.after(method, url, self.registry.request(method, url, **kwargs))

    def close(self) -> None:
        self.registry.close()


def _typed(transport: Intercepting) -> Transport:
    return transport  # mypy: the wrapper is a Transport
