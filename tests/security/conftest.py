"""The adversarial suite (issue 8): every test plays a hostile build or a hostile client
against the real thing (runners on a real engine or sandbox, the real registry, the real
store and web app) and checks that a canary host file and canary secrets stay untouched
and unseen.

Shared fixtures: ``canary`` (a host directory outside every workspace holding a file with
a random secret, which no test may see leave, change or appear).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass(frozen=True)
class Canary:
    """A host directory the bot can read and a build must never reach."""

    directory: Path
    file: Path
    secret: str

    def intact(self) -> bool:
        return self.file.read_text() == self.secret and not self.file.is_symlink()


@pytest.fixture
def canary(tmp_path_factory: pytest.TempPathFactory) -> Canary:
    directory = tmp_path_factory.mktemp("host-canary")
    secret = f"CANARY-{secrets.token_hex(16)}"
    file = directory / "private.key"
    file.write_text(secret)
    return Canary(directory, file, secret)
