"""How the real wercker.yml corpus fares: clean / warnings only / errors, by error class.

Usage: ``.venv/bin/python scripts/corpus_report.py [CORPUS_FILES_DIR]``
(default ``../shared/corpus/wercker-yml/files``). Two views are printed: the whole file
(every pipeline linted), and a default build (``build`` then ``deploy``, as behaviour §4),
where errors in pipelines that are not run do not count.

Each view also counts the files whose every step resolves (``resolves``), and those that
plan (no blocking error and every step resolves). A step id resolves when it is a step type
of the bot (``steps.STEP_TYPES``), a dev-only step (skipped, ``schema.DEV_STEPS``), or a
built-in step package (``steps/library/<name>/`` holding ``run.sh``, for ``wercker/<name>``
or ``<name>``, any version), looked up when the report runs. Configured ``[steps]``
sources are not counted: the corpus has no config. The registry step ids left unresolved
are listed, ranked by how many files use them.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.errors import WerckerFileError
from bot.settings import PipelineChoice
from bot.wercker.model import Loc, PipelineSpec, Problem, StepSpec
from bot.wercker.parse import load_path
from bot.wercker.schema import DEV_STEPS
from bot.wercker.selection import blocking_problems, select_pipelines, steps_for

DEFAULT_DIR = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "wercker-yml" / "files"
DEFAULT_CHOICES = (PipelineChoice("build"), PipelineChoice("deploy"))
LIBRARY = Path(__file__).resolve().parents[1] / "steps" / "library"

_CLASSES = (
    ("invalid YAML", "unreadable: invalid YAML"),
    ("is empty", "unreadable: empty file"),
    ("must be a mapping of pipelines", "unreadable: top level is not a mapping"),
    ("Wercker step registry", "registry step (cannot be fetched)"),
    ("is not a step id", "step id that is no step (e.g. a shell command)"),
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


class View:
    """One row of the report: a status and its error classes, and the step ids that do not
    resolve (``None``: no plan at all, the file or its pipelines could not be read)."""

    def __init__(self, status: str, classes: set[str], unresolved: set[str] | None) -> None:
        self.status, self.classes, self.unresolved = status, classes, unresolved

    @property
    def resolves(self) -> bool:
        return self.unresolved is not None and not self.unresolved

    @property
    def plans(self) -> bool:
        return self.resolves and self.status != "errors"


def resolves(step_id: str, library: Path = LIBRARY) -> bool:
    """Whether the bot can run ``step_id`` with no configured source (module docstring):
    asked of the bot's own resolver, so the report counts what a build would run."""
    from bot.logs import MemoryLog
    from bot.stepsources.resolve import StepSources, Unresolved
    from steps import STEP_TYPES

    if step_id in STEP_TYPES or step_id in DEV_STEPS:
        return True
    try:
        StepSources(library=library).resolve(step_id, MemoryLog())
    except Unresolved:
        return False
    return True


def unresolved(pipelines: list[PipelineSpec], *, every_list: bool, library: Path) -> set[str]:
    """The step ids of ``pipelines`` that do not resolve: of every step list
    (``every_list``), else of what a build runs (``steps_for`` with no deploy target, and
    the after-steps)."""
    steps: list[StepSpec] = []
    for pipeline in pipelines:
        steps += pipeline.after_steps
        if every_list:
            steps += pipeline.steps + [s for t in pipeline.targets.values() for s in t]
        else:
            steps += steps_for(pipeline, None)
    return {s.id for s in steps if not resolves(s.id, library)}


def classify(path: Path, library: Path = LIBRARY) -> tuple[View, View]:
    """The whole-file view and the default-build view of one file."""
    wf, problems = load_path(path, path.name)
    status, classes = _status(problems)
    if wf is None:
        return View(status, classes, None), View(status, classes, None)
    whole = View(status, classes, unresolved(list(wf.pipelines.values()), every_list=True,
                                             library=library))
    try:
        selected = select_pipelines(wf, DEFAULT_CHOICES, "main")
    except WerckerFileError as err:
        problem = Problem(Loc(path.name, 1, 1), "error", str(err))
        return whole, View("errors", {error_class(problem)}, None)
    names = {p.name for p in selected}
    relevant = [p for p in problems if p.pipeline is None or p.pipeline in names]
    blocking = blocking_problems(problems, selected)
    status = "errors" if blocking else ("warnings" if relevant else "clean")
    default = View(status, {error_class(p) for p in blocking},
                   unresolved(selected, every_list=False, library=library))
    return whole, default


def _status(problems: list[Problem]) -> tuple[str, set[str]]:
    errors = [p for p in problems if p.severity == "error"]
    if errors:
        return "errors", {error_class(p) for p in errors}
    return ("warnings" if problems else "clean"), set()


def report(directory: Path, library: Path = LIBRARY) -> str:
    files = sorted(p for p in directory.iterdir() if p.is_file())
    lines = [f"{len(files)} files in {directory}; built-in steps from {library}"]
    views: list[list[View]] = [[], []]
    for path in files:
        for view, found in zip(classify(path, library), views, strict=True):
            found.append(view)
    titles = ("whole file (every pipeline)", "default build (build, then deploy)")
    for title, found in zip(titles, views, strict=True):
        counts = Counter(v.status for v in found)
        lines.append(f"\n{title}: clean {counts['clean']}, warnings only "
                     f"{counts['warnings']}, errors {counts['errors']}; every step resolves "
                     f"{sum(v.resolves for v in found)}; plans (no error, every step "
                     f"resolves) {sum(v.plans for v in found)}")
        by_class = Counter(c for v in found for c in v.classes)
        for name, n in by_class.most_common():
            lines.append(f"  {n:4d} files  {name}")
        ids = Counter(i for v in found for i in (v.unresolved or ()))
        lines.append(f"  unresolved step ids ({len(ids)}), by files using them:")
        for step_id, n in sorted(ids.items(), key=lambda item: (-item[1], item[0])):
            lines.append(f"  {n:4d} files  {step_id}")
    return "\n".join(lines)


if __name__ == "__main__":
    print(report(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_DIR))
