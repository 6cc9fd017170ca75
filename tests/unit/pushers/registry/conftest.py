"""A ``RegistryClient`` on the in-memory registry (``tests/fakes/registry.py``), with its
waits recorded instead of slept and its retry lines in a ``MemoryLog``."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from bot.logs import MemoryLog
from bot.pushers.credentials import RegistryCredentials
from bot.pushers.model import RegistryAuth
from bot.pushers.registry.client import RegistryClient, RetryPolicy
from tests.fakes.registry import FakeRegistry

NOW = 1_800_000_000.0  # the fake clock: an instant, so Retry-After dates are exact


@dataclass
class Harness:
    """What a test drives and inspects: the ``registry``, the build ``log``, and the
    ``sleeps`` the client asked for, in order."""

    registry: FakeRegistry
    log: MemoryLog = field(default_factory=MemoryLog)
    sleeps: list[float] = field(default_factory=list)

    def client(self, auth: RegistryAuth | None = None, attempts: int = 4) -> RegistryClient:
        return RegistryClient(
            self.registry.host,
            "https",
            auth or RegistryAuth(),
            {},
            credentials=RegistryCredentials({}),
            retry=RetryPolicy(attempts=attempts),
            log=self.log,
            transport=self.registry,
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
