"""Small helpers for the wercker.yml tests: load a snippet and look at its problems."""

from __future__ import annotations

import textwrap

from bot.wercker.model import Problem, WerckerFile
from bot.wercker.parse import load_text


def load(text: str) -> tuple[WerckerFile | None, list[Problem]]:
    return load_text(textwrap.dedent(text), "wercker.yml")


def loaded(text: str) -> tuple[WerckerFile, list[Problem]]:
    wf, problems = load(text)
    assert wf is not None, [p.format() for p in problems]
    return wf, problems


def messages(problems: list[Problem], severity: str | None = None) -> list[str]:
    return [p.message for p in problems if severity is None or p.severity == severity]


def only(problems: list[Problem], needle: str) -> Problem:
    found = [p for p in problems if needle in p.message]
    assert len(found) == 1, [p.format() for p in problems]
    return found[0]
