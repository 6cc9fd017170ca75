"""Which pipelines and steps of a parsed wercker.yml a build runs (behaviour §4).

Pure functions over ``bot.wercker.model``; the plan compiler (``bot.plan.compile_plan``) calls
them in this order: ``select_pipelines`` → ``blocking_problems`` (whether lint errors stop the
build) → for each pipeline ``steps_for`` → ``timeouts_for`` once. Intake calls only
``planned_pipelines``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING

from bot.errors import WerckerFileError
from bot.wercker import schema
from bot.wercker.model import PipelineSpec, Problem, StepSpec, WerckerFile

if TYPE_CHECKING:  # annotations only: the frontend imports nothing below it at run time
    from bot.settings import PipelineChoice


def branch_matches(choice: PipelineChoice, branch: str) -> bool:
    """Whether ``choice`` runs for ``branch`` (or tag): no globs, or one glob matches
    (fnmatch, case-sensitive)."""
    return not choice.branches or any(fnmatchcase(branch, g) for g in choice.branches)


def planned_pipelines(choices: Sequence[PipelineChoice], branch: str) -> list[str]:
    """The configured pipelines whose branch globs match: their contexts go pending at
    intake, before any wercker.yml is read."""
    return [c.name for c in choices if branch_matches(c, branch)]


def select_pipelines(
    wf: WerckerFile, choices: Sequence[PipelineChoice], branch: str
) -> list[PipelineSpec]:
    """The pipelines to run, in the configured order.

    An entry is skipped when its ``branches`` globs (fnmatch, case-sensitive) are non-empty and
    none matches ``branch``, or when the file does not define it. Raises ``WerckerFileError``
    when the file defines none of the listed pipelines at all (regardless of branch), naming
    the ones it does define. May return ``[]``: every defined entry was filtered by branch.
    """
    if not any(choice.name in wf.pipelines for choice in choices):
        wanted = ", ".join(choice.name for choice in choices) or "(no pipelines configured)"
        defined = ", ".join(wf.pipelines) or "no pipelines"
        raise WerckerFileError(f"none of {wanted} is defined in {wf.path}; it defines: {defined}")
    selected: list[PipelineSpec] = []
    for choice in choices:
        pipeline = wf.pipelines.get(choice.name)
        if pipeline is None or any(p.name == choice.name for p in selected):
            continue
        if not branch_matches(choice, branch):
            continue
        selected.append(pipeline)
    return selected


def steps_for(
    pipeline: PipelineSpec,
    deploy_target: str | None,
    problems: list[Problem] | None = None,
) -> list[StepSpec]:
    """The main steps: the deploy target's list when the pipeline has one by that name, else
    ``steps`` (wercker/wercker#258). ``after_steps`` are never replaced.

    A warning is appended to ``problems`` when a target was asked for and the pipeline has
    other targets but not that one, and when the pipeline has only targets and none is chosen.
    A pipeline without any targets ignores ``deploy_target`` silently (it applies repo-wide).
    """
    if deploy_target and deploy_target in pipeline.targets:
        return list(pipeline.targets[deploy_target])
    names = ", ".join(pipeline.targets)
    if problems is not None and pipeline.targets:
        if deploy_target:
            problems.append(
                Problem(
                    pipeline.loc,
                    "warning",
                    f"pipeline '{pipeline.name}' has no deploy target '{deploy_target}' (it has "
                    f"{names}); running its 'steps'",
                    None,
                    pipeline.name,
                )
            )
        elif not pipeline.steps:
            problems.append(
                Problem(
                    pipeline.loc,
                    "warning",
                    f"pipeline '{pipeline.name}' has no 'steps', only deploy targets ({names})",
                    "set deploy_target for this repository in the bot's config",
                    pipeline.name,
                )
            )
    return list(pipeline.steps)


def timeouts_for(wf: WerckerFile) -> tuple[float | None, float | None]:
    """``(command_timeout, no_response_timeout)`` in seconds; the defaults are 25 and 5
    minutes. The parser has already applied the > 0 rule and the 60-minute cap."""
    command = wf.command_timeout or schema.DEFAULT_COMMAND_TIMEOUT_MINUTES
    silence = wf.no_response_timeout or schema.DEFAULT_NO_RESPONSE_TIMEOUT_MINUTES
    return float(command * 60), float(silence * 60)


def blocking_problems(
    problems: Iterable[Problem],
    pipelines: Iterable[PipelineSpec],
    deploy_target: str | None = None,
) -> list[Problem]:
    """The errors that must stop a build running ``pipelines``: errors of the file as a whole
    (``pipeline is None``) and errors inside one of those pipelines. Errors in pipelines that
    are not run do not block (a broken ``dev`` pipeline must not fail ``build``), and neither
    do errors in step lists of a run pipeline that ``deploy_target`` leaves out."""
    chosen = list(pipelines)
    names = {p.name for p in chosen}
    unrun = {p.name: _unrun_lines(p, deploy_target) for p in chosen}
    return [
        p
        for p in problems
        if p.severity == "error"
        and (p.pipeline is None or p.pipeline in names)
        and not (p.pipeline in unrun and p.loc.line in unrun[p.pipeline])
    ]


def _unrun_lines(pipeline: PipelineSpec, deploy_target: str | None) -> set[int]:
    """Lines of the step lists ``steps_for`` does not pick: the other deploy targets, and
    ``steps`` itself when a target replaces it."""
    picked = deploy_target if deploy_target in pipeline.targets else None
    skipped = [steps for name, steps in pipeline.targets.items() if name != picked]
    if picked is not None:
        skipped.append(pipeline.steps)
    lines: set[int] = set()
    for steps in skipped:
        for step in steps:
            lines.add(step.loc.line)
            lines.update(loc.line for loc in step.option_locs.values())
    return lines
