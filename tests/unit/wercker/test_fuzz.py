"""No input makes the loader raise: random mutations of real and synthetic files.

A seeded ``random.Random`` instead of hypothesis keeps the test dependency-free and
reproducible; a failure prints the mutated text to paste into a unit test.
"""

from __future__ import annotations

import random

from bot.wercker.lint import lint_for_runner
from bot.wercker.parse import load_text
from tests.harness.paths import CORPUS

SEEDS = [
    "build:\n  steps:\n    - script:\n        name: a\n        code: echo $A\n",
    "box: {id: golang, env: {a: 1}}\nservices: [mongo, {id: x}]\ncommand-timeout: 5\n"
    "deploy:\n  base-path: /x/\n  docker: yes\n  ecs:\n    - internal/docker-push:\n"
    "      repository: a/b\n      tag: [1, 2]\n      ports: 80/tcp\n      env: {A: b}\n"
    "  after-steps:\n    - internal/docker-build: {image-name: i}\n",
    "a: &x {steps: [npm-install]}\nb:\n  <<: *x\n  box: *x\n",
    "build:\n  - script: Name\n    code: x\n  - - nested\n  - {}\n  - null\n",
]
NOISE = ":-[]{}\t\n'\"&*!|>%@`#$,?~ 0a"


def mutate(rng: random.Random, text: str) -> str:
    chars = list(text)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(4)
        pos = rng.randrange(len(chars) + 1)
        if op == 0 and chars:
            del chars[min(pos, len(chars) - 1)]
        elif op == 1:
            chars.insert(pos, rng.choice(NOISE))
        elif op == 2:
            chars = chars[:pos]
        else:
            lines = "".join(chars).splitlines(keepends=True)
            if lines:
                line = rng.choice(lines)
                chars = list("".join(lines) + line)
    return "".join(chars)


def check(text: str) -> None:
    try:
        wf, problems = load_text(text, "wercker.yml")
        if wf is not None:
            lint_for_runner(wf, "local")
    except Exception as err:  # pragma: no cover - the failure report
        raise AssertionError(f"{err!r} for input:\n{text!r}") from err
    assert wf is not None or any(p.severity == "error" for p in problems), repr(text)
    for problem in problems:
        assert problem.loc.line >= 1 and problem.loc.col >= 1
        assert "internal error" not in problem.message, (problem.format(), text)


def test_mutations_never_raise() -> None:
    rng = random.Random(20261127)
    seeds = list(SEEDS)
    files = CORPUS / "files"
    if files.is_dir():  # optional: the synthetic seeds run without ../shared
        seeds += [p.read_text("utf-8", "replace") for p in sorted(files.iterdir())[::10]]
    for seed in seeds:
        check(seed)
        for _ in range(60):
            check(mutate(rng, seed))


def test_odd_inputs() -> None:
    for text in ["\x00", "\ufeffbuild: {}", "[" * 2000, "- " * 500, "a: " + "[" * 300 + "]" * 300,
                 "&a [*a]", "a: &a [*a]\nbuild: {steps: *a}", "!!python/object:os.system x",
                 "build: !!binary aGk=", "? [a]\n: b", "build:\n  steps:\n    - ? [a]\n      : b"]:
        check(text)
