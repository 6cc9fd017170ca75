"""How the real wercker.yml corpus fares: clean / warnings only / errors, by error class.

Usage: ``.venv/bin/python scripts/corpus_report.py [CORPUS_FILES_DIR]``
(default ``../shared/corpus/wercker-yml/files``). Two views are printed: the whole file
(every pipeline linted), and a default build (``build`` then ``deploy``, as behaviour §4),
where errors in pipelines that are not run do not count.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.errors import WerckerFileError
from bot.settings import PipelineChoice
from bot.wercker.model import Loc, Problem
from bot.wercker.parse import load_path
from bot.wercker.selection import blocking_problems, select_pipelines

DEFAULT_DIR = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "wercker-yml" / "files"
DEFAULT_CHOICES = (PipelineChoice("build"), PipelineChoice("deploy"))

_CLASSES = (
    ("invalid YAML", "unreadable: invalid YAML"),
    ("is empty", "unreadable: empty file"),
    ("must be a mapping of pipelines", "unreadable: top level is not a mapping"),
    ("Wercker step registry", "registry step (cannot be fetched)"),
    ("is not supported by wercker-bot", "internal step the bot cannot run"),
    ("unknown internal step", "internal step the bot cannot run"),
    ("needs 'repository'", "push step without repository"),
    ("has no code", "script step without code"),
    ("none of build, deploy", "no build or deploy pipeline"),
    ("box image '", "box image that cannot be pulled as written (e.g. upper-case name)"),
)


def error_class(problem: Problem) -> str:
    for needle, name in _CLASSES:
        if needle in problem.message:
            return name
    return "other: " + problem.message


def classify(path: Path) -> tuple[tuple[str, set[str]], tuple[str, set[str]]]:
    """``((whole-file status, error classes), (default-build status, error classes))``;
    a status is ``clean``, ``warnings`` or ``errors``."""
    wf, problems = load_path(path, path.name)
    whole = _status(problems)
    if wf is None:
        return whole, whole
    try:
        selected = select_pipelines(wf, DEFAULT_CHOICES, "main")
    except WerckerFileError as err:
        return whole, ("errors", {error_class(Problem(Loc(path.name, 1, 1), "error", str(err)))})
    names = {p.name for p in selected}
    relevant = [p for p in problems if p.pipeline is None or p.pipeline in names]
    blocking = blocking_problems(problems, selected)
    status = "errors" if blocking else ("warnings" if relevant else "clean")
    return whole, (status, {error_class(p) for p in blocking})


def _status(problems: list[Problem]) -> tuple[str, set[str]]:
    errors = [p for p in problems if p.severity == "error"]
    if errors:
        return "errors", {error_class(p) for p in errors}
    return ("warnings" if problems else "clean"), set()


def report(directory: Path) -> str:
    files = sorted(p for p in directory.iterdir() if p.is_file())
    lines = [f"{len(files)} files in {directory}"]
    views: list[tuple[Counter[str], Counter[str]]] = [(Counter(), Counter()) for _ in "ab"]
    for path in files:
        for (status, classes), (counts, by_class) in zip(classify(path), views, strict=True):
            counts[status] += 1
            by_class.update(classes)
    for title, (counts, by_class) in zip(
        ("whole file (every pipeline)", "default build (build, then deploy)"), views, strict=True
    ):
        lines.append(f"\n{title}: clean {counts['clean']}, warnings only "
                     f"{counts['warnings']}, errors {counts['errors']}")
        for name, n in by_class.most_common():
            lines.append(f"  {n:4d} files  {name}")
    return "\n".join(lines)


if __name__ == "__main__":
    print(report(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_DIR))
