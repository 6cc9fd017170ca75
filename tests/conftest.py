"""Fixtures for real services live in ``tests/harness``; each module owns one service."""

pytest_plugins = [
    "tests.harness.registry",
    "tests.harness.dockerd",
    "tests.harness.github_fake",
]
