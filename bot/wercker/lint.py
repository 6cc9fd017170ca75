"""Checks on a parsed wercker.yml: what Wercker silently ignored or this bot cannot run.

- ``lint_file(wf)``: every runner-independent problem. ``parse.load_text`` already includes
  these, so callers of ``load_dir``/``load_text`` do not call it again.
- ``lint_for_runner(wf, runner_kind)``: only the problems that depend on the runner kind
  (``internal/docker-build`` needs the docker runner; a ``/pipeline/...`` path hard-coded in
  a script does not exist on the local runner). Add them to the load problems.
- ``check_file(path, runner_kind)``: both, for ``wercker-bot check FILE``.
- ``problems_to_json``: the ``--format json`` shape.

The checks on one box or step are in ``checks``.

Messages never contain option values that could be credentials; they name options instead.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from bot.wercker import schema
from bot.wercker.checks import check_box, check_step, did_you_mean
from bot.wercker.model import Loc, PipelineSpec, Problem, Severity, StepSpec, WerckerFile

__all__ = ["check_file", "did_you_mean", "lint_file", "lint_for_runner", "problems_to_json"]


def check_file(
    path: Path, runner_kind: str | None = None, built_in: Callable[[str], bool] | None = None
) -> list[Problem]:
    """Every problem in the file at ``path`` (or in the wercker.yml of the directory
    ``path``): parse, lint and, given a runner kind, the runner-specific lint, sorted by
    position. Locations name the path as given, so editors can jump to them. Never raises.

    ``built_in`` tells whether a registry step id is served by the bot's built-in library
    (``bot.stepsources.is_built_in``; the frontend imports nothing below it): any other
    registry step gets a warning, since the bot runs it only from a configured source."""
    from bot.wercker.parse import find_file, load_path

    if path.is_dir():
        found = find_file(path)
        if found is None:
            return [
                Problem(Loc(str(path), 1, 1), "error", f"no wercker.yml or .wercker.yml in {path}")
            ]
        path = found
    wf, problems = load_path(path, str(path))
    if wf is not None and runner_kind:
        problems = problems + lint_for_runner(wf, runner_kind)
    if wf is not None and built_in is not None:
        problems = problems + _not_built_in(wf, built_in)
    return sorted(problems, key=lambda p: (p.loc.line, p.loc.col))


def _not_built_in(wf: WerckerFile, built_in: Callable[[str], bool]) -> list[Problem]:
    """A warning per registry step the built-in library does not serve (ids that cannot be
    step ids at all are already errors of ``lint_file``)."""
    found: list[Problem] = []
    for pipeline in wf.pipelines.values():
        lists = [pipeline.steps, pipeline.after_steps, *pipeline.targets.values()]
        for step in (step for steps in lists for step in steps):
            if step.id == "script" or step.id.startswith("internal/") or " " in step.id:
                continue
            if not built_in(step.id):
                found.append(
                    Problem(
                        step.loc,
                        "warning",
                        f"step '{step.id}' is not in the bot's built-in library",
                        f'the bot runs it only with [steps] "{step.id.partition("@")[0]}" = '
                        '{ git = "<url>", ref = "<ref>" } in its config',
                        pipeline.name,
                    )
                )
    return found


def problems_to_json(problems: Iterable[Problem]) -> list[dict[str, Any]]:
    """One dict per problem: file, line, col, severity, message, hint, pipeline."""
    return [
        {
            "file": p.loc.file,
            "line": p.loc.line,
            "col": p.loc.col,
            "severity": p.severity,
            "message": p.message,
            "hint": p.hint,
            "pipeline": p.pipeline,
        }
        for p in problems
    ]


_DOCKER_RUN_STEPS = frozenset({"internal/docker-run", "internal/docker-kill"})


def lint_for_runner(wf: WerckerFile, runner_kind: str) -> list[Problem]:
    """Problems that depend on where steps run: ``local`` (sandboxed or ``local-unsafe``)
    cannot run ``internal/docker-build``, ``internal/docker-run``/``docker-kill`` or the
    pipeline's services (errors naming the docker runner), give a pipeline ``docker: true``,
    and has no
    ``/pipeline/...`` paths (a warning naming the ``WERCKER_*`` variable); ``auto`` may
    pick local, so those are warnings. ``docker`` (or any other kind) adds nothing. Does NOT
    repeat ``lint_file``'s problems."""
    if runner_kind not in ("local", "local-unsafe", "auto"):
        return []
    on_host = runner_kind != "auto"
    severity: Severity = "error" if on_host else "warning"
    tail = "" if on_host else "; it fails if the auto runner picks local"
    out: list[Problem] = []
    for pipeline in wf.pipelines.values():
        services = wf.services if pipeline.services is None else pipeline.services
        for service in services:
            what = f"service '{service.id}' of pipeline '{pipeline.name}'"
            out.append(_needs_docker(service.loc, what, pipeline.name, severity, tail))
        for step in _all_steps(pipeline):
            out.extend(_pipeline_paths(step, pipeline.name, tail))
            if step.id in _DOCKER_RUN_STEPS:
                out.append(_needs_docker(step.loc, step.id, pipeline.name, severity, tail))
            if step.id == schema.DOCKER_BUILD:
                out.append(
                    Problem(
                        step.loc,
                        severity,
                        f"{step.id} needs a Docker Engine (runner kind docker){tail}",
                        "build the image in a script step or push with "
                        "internal/docker-scratch-push",
                        pipeline.name,
                    )
                )
        if pipeline.docker:
            out.append(
                Problem(
                    pipeline.loc,
                    "warning",
                    f"'docker: true' in pipeline '{pipeline.name}' needs a Docker "
                    f"Engine (runner kind docker){tail}",
                    None,
                    pipeline.name,
                )
            )
    return out


# Wercker's guest paths and the variable that holds each on every runner (spec §5.1).
_GUEST_PATHS = {
    "source": "$WERCKER_ROOT (the checkout; $WERCKER_SOURCE_DIR includes source-dir)",
    "output": "$WERCKER_OUTPUT_DIR",
    "cache": "$WERCKER_CACHE_DIR",
    "report": "$WERCKER_REPORT_DIR",
}
_MAX_PATH_WARNINGS = 5
# '/pipeline' as a whole path component, not inside another path ('/x/pipeline', '$D/pipeline').
_GUEST_PATH = re.compile(r"(?<![\w}/.$-])/pipeline(?![\w.-])(?:/([\w.-]+))?")


def _pipeline_paths(step: StepSpec, pipeline: str, tail: str) -> list[Problem]:
    """A warning per distinct ``/pipeline/...`` path hard-coded in a script's code: on the
    local runner the workspace lies elsewhere on the host, so the path does not exist; the
    ``WERCKER_*`` variables hold the right path on every runner."""
    if step.id != "script":
        return []
    out: list[Problem] = []
    seen: set[str] = set()
    for match in _GUEST_PATH.finditer(step.option("code")):
        sub = match.group(1) or ""
        if sub in seen:
            continue
        if len(seen) == _MAX_PATH_WARNINGS:
            break  # one line per path is enough; a generated script must not flood the log
        seen.add(sub)
        variable = _GUEST_PATHS.get(sub) or "$WERCKER_PIPELINE_DIR" + (f"/{sub}" if sub else "")
        out.append(
            Problem(
                step.option_locs.get("code", step.loc),
                "warning",
                f"script step '{step.name}' uses the path {match.group(0)}, which only exists "
                f"in a container: on the local runner it is elsewhere{tail}",
                f"use {variable} instead of {match.group(0)}",
                pipeline,
            )
        )
    return out


def _needs_docker(
    loc: Loc, what: str, pipeline: str | None, severity: Severity, tail: str
) -> Problem:
    # An error, not a silent skip: a step that expects the container would fail later.
    return Problem(
        loc,
        severity,
        f"{what} needs the docker runner (runner kind docker){tail}",
        'set [runner] kind = "docker" for this repository, or start what the build needs '
        "outside the bot and pass its address in the repository's env",
        pipeline,
    )


def lint_file(wf: WerckerFile) -> list[Problem]:
    """Every runner-independent problem of a parsed file."""
    out: list[Problem] = _near_miss_pipelines(wf)
    if wf.box is not None:
        out.extend(check_box(wf.box, None))
    for service in wf.services:
        out.extend(check_box(service, None, service=True))
    for pipeline in wf.pipelines.values():
        if pipeline.box is not None:
            out.extend(check_box(pipeline.box, pipeline.name))
        for service in pipeline.services or []:
            out.extend(check_box(service, pipeline.name, service=True))
        for step in _all_steps(pipeline):
            out.extend(check_step(step, pipeline.name))
        out.extend(_built_images(pipeline))
    return out


# The pipelines a default build runs (behaviour §4); a near miss of one is likely a typo.
_DEFAULT_PIPELINES = ("build", "deploy")


def _near_miss_pipelines(wf: WerckerFile) -> list[Problem]:
    """A warning for a pipeline named like ``build`` or ``deploy`` (``buid``, ``delpoy``,
    ``Build``) in a file that lacks that pipeline: the default build would not find it. Names
    that contain a default name (``build-arm``, ``deploy2``, ``rebuild``) are deliberate.
    The problem is the file's (``pipeline=None``): it decides which pipelines a build finds."""
    out: list[Problem] = []
    for name, pipeline in wf.pipelines.items():
        lowered = name.lower()
        for wanted in _DEFAULT_PIPELINES:
            if wanted in wf.pipelines or (wanted in lowered and lowered != wanted):
                continue  # present, or deliberate (build-arm, rebuild); 'Build' warns
            if _looks_like(lowered, wanted):
                out.append(
                    Problem(
                        pipeline.loc,
                        "warning",
                        f"pipeline '{name}' looks like a misspelling of '{wanted}', which this "
                        "file does not have",
                        f"did you mean '{wanted}'? a default build runs build, then deploy",
                    )
                )
    return out


def _looks_like(name: str, wanted: str) -> bool:
    """Whether difflib rates ``name`` at least 0.8 like ``wanted``. Most names fail the upper
    bound that only counts shared letters (difflib's ``quick_ratio``) and are answered without
    importing difflib, as in ``checks.did_you_mean``: ``check`` starts faster without it."""
    shared = sum((Counter(name) & Counter(wanted)).values())
    if 2.0 * shared / (len(name) + len(wanted)) < 0.8:
        return False
    import difflib

    return difflib.SequenceMatcher(None, name, wanted).ratio() >= 0.8


def _built_images(pipeline: PipelineSpec) -> list[Problem]:
    """A push with ``image-name`` pushes an image an earlier docker-build made; without one
    the push fails at run time, so say so now (``image:`` read as ``image-name`` lands here).
    After-steps may use images built by ``steps`` or any deploy target."""
    out: list[Problem] = []
    built = _scan_builds(pipeline, pipeline.steps, set(), out)
    for steps in pipeline.targets.values():
        built |= _scan_builds(pipeline, steps, set(), out)
    _scan_builds(pipeline, pipeline.after_steps, built, out)
    return out


def _scan_builds(
    pipeline: PipelineSpec, steps: list[StepSpec], built: set[str], out: list[Problem]
) -> set[str]:
    for step in steps:
        name = step.option("image-name")
        if step.id == schema.DOCKER_BUILD:
            built.add(name)
        elif step.id in schema.PUSH_STEPS and name and name not in built:
            out.append(
                Problem(
                    step.option_locs.get("image-name", step.loc),
                    "warning",
                    f"image-name '{name}' is not built by an earlier {schema.DOCKER_BUILD} "
                    f"in pipeline '{pipeline.name}'",
                    "add an internal/docker-build step with the same image-name, or remove "
                    "image-name to push the pipeline's container",
                    pipeline.name,
                )
            )
    return built


def _all_steps(pipeline: PipelineSpec) -> Iterator[StepSpec]:
    yield from pipeline.steps
    yield from pipeline.after_steps
    for steps in pipeline.targets.values():
        yield from steps
