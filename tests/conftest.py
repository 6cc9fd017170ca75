"""Fixtures for real services live in ``tests/harness``; each module owns one service.

Markers (registered in pyproject.toml, ``--strict-markers``):

- ``docker``: the test needs the Docker Engine. It is added here to every test whose fixture
  closure includes ``dockerd`` (``tests.harness.dockerd``), directly or through other
  fixtures, so ``pytest -m docker`` selects them all and ``pytest -m "not docker"`` never
  starts one; a fixture that asks for ``dockerd`` only for some of its params marks those
  params itself (``pytest.param(..., marks=pytest.mark.docker)``).
- ``corpus``: the test reads ``../shared/corpus``.
"""

from __future__ import annotations

import pytest

pytest_plugins = [
    "tests.harness.registry",
    "tests.harness.dockerd",
    "tests.harness.github_fake",
    "tests.harness.postgres",
]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "dockerd" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.docker)
