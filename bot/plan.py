"""Compile once: a checkout's wercker.yml, the repository's settings, the push and what this
host can run become one plain ``Plan``, before any step runs.

``compile_plan`` is the only place that reads, lints and chooses: which pipelines run (branch
globs, in the configured order), which steps (the deploy target applied), which box (resolved
and expanded), which timeouts and which runner kind. The executor (``bot.chain.run_chain``,
``bot.pipeline.run_pipeline``) takes the ``Plan`` and never parses, lints or chooses again;
``wercker-bot run`` compiles the same way.

What stops a build is decided here, with the messages users see: a file that cannot be read,
lint errors in the pipelines that run (``blocking_problems``), none of the configured
pipelines defined, a pipeline with only deploy targets and none chosen, a registry step id
that resolves to no step package (``StepSources``: a ``[steps]`` source, else the built-in
library). Each raises
``WerckerFileError``; a runner kind that cannot run here raises ``InfrastructureError``. No
wercker.yml at all is not an error: ``NoWerckerFile``.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Protocol

from bot.errors import WerckerFileError
from bot.images import ImageRef
from bot.logs import Log
from bot.pushers.target import resolve_box as target_of_box
from bot.pushers.target import without_reference
from bot.runners.base import ServiceBox, Timeouts
from bot.settings import RegistrySettings, RepoSettings
from bot.stepsources import StepPackage
from bot.stepsources.resolve import StepSources, Unresolved
from bot.wercker.expand import expand
from bot.wercker.lint import lint_for_runner
from bot.wercker.model import BoxSpec, PipelineSpec, Problem, StepSpec, WerckerFile
from bot.wercker.parse import load_dir
from bot.wercker.schema import is_strict
from bot.wercker.selection import blocking_problems, select_pipelines, steps_for, timeouts_for

__all__ = [
    "NoWerckerFile",
    "Plan",
    "PlannedBox",
    "PlannedPipeline",
    "RunnerKinds",
    "compile_file",
    "compile_plan",
    "resolve_box",
]


class RunnerKinds(Protocol):
    """What this host can run (``bot.runners.select.RunnerChooser``): the runner kind for a
    plan whose pipelines ``boxless`` have no box, logged with its reason. Raises
    ``InfrastructureError`` when no allowed kind can run here."""

    def kind_for(self, boxless: Sequence[str], log: Log) -> str: ...


@dataclass(frozen=True)
class PlannedBox:
    """A pipeline's box: the image to pull (with its own credentials in ``image.auth``) and
    its environment, both expanded against the repository's env and secrets."""

    image: ImageRef
    env: Mapping[str, str]


@dataclass(frozen=True)
class PlannedPipeline:
    """One pipeline as it will run. ``steps`` are the main steps (the deploy target's list
    when it has one), ``after_steps`` run whatever the main steps did. ``deploy`` says the
    pipeline gets Wercker's deploy environment (any pipeline after the first, and one named
    ``deploy``). ``runner_kind`` is the kind every pipeline of the plan runs on.
    ``packages`` maps each registry step id written in the pipeline (``StepSpec.id``) to the
    step package resolved for it, so the executor never resolves again. ``services`` are
    the pipeline's services (its own list, else the file's), resolved and expanded like the
    box."""

    name: str
    position: int
    steps: tuple[StepSpec, ...]
    after_steps: tuple[StepSpec, ...]
    box: PlannedBox | None
    base_path: str | None
    source_dir: str | None
    timeouts: Timeouts
    deploy_target: str | None
    deploy: bool
    runner_kind: str
    packages: Mapping[str, StepPackage] = field(default_factory=lambda: MappingProxyType({}))
    services: tuple[ServiceBox, ...] = ()


@dataclass(frozen=True)
class Plan:
    """A compiled wercker.yml: ``pipelines`` in the order they run (may be empty: every
    configured pipeline was filtered out by its branch globs), the runner kind they need,
    every lint problem that did not block (``problems``, sorted by position) and the plan's
    own warnings (``warnings``: a deploy target a pipeline lacks)."""

    file: str
    pipelines: tuple[PlannedPipeline, ...]
    runner_kind: str
    problems: tuple[Problem, ...]
    warnings: tuple[Problem, ...]

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.pipelines]


@dataclass(frozen=True)
class NoWerckerFile:
    """The commit has no wercker.yml nor .wercker.yml: there is nothing to run."""


def compile_plan(
    source: Path,
    repo: RepoSettings,
    ref: str,
    *,
    runners: RunnerKinds,
    registries: Mapping[str, RegistrySettings],
    log: Log,
    steps: StepSources | None = None,
) -> Plan | NoWerckerFile:
    """Reads the wercker.yml of the checkout ``source`` and compiles it for ``repo``'s
    settings (pipelines, deploy target, env, secrets) and the pushed branch or tag ``ref``.
    Every problem and the runner choice are written to ``log``. Raises ``WerckerFileError``
    (naming the first blocking error and its line) or ``InfrastructureError`` as the module
    says. ``steps`` resolves registry step ids (default: the built-in library only)."""
    wf, problems, path = load_dir(source)
    if path is None:
        log.info("no wercker.yml or .wercker.yml in the repository root")
        return NoWerckerFile()
    log.info(f"read {path.name}")
    if wf is None:
        _log_problems(problems, log)
        errors = [p for p in problems if p.severity == "error"]
        first = errors[0].short() if errors else f"{path.name} could not be read"
        raise WerckerFileError(first, list(errors))
    return compile_file(
        wf, problems, repo, ref, runners=runners, registries=registries, log=log, steps=steps
    )


def compile_file(
    wf: WerckerFile,
    problems: Sequence[Problem],
    repo: RepoSettings,
    ref: str,
    *,
    runners: RunnerKinds,
    registries: Mapping[str, RegistrySettings],
    log: Log,
    steps: StepSources | None = None,
) -> Plan:
    """``compile_plan`` for a file already parsed (``problems``: what parsing and
    ``lint_file`` found). Lints for the runner once, with the kind the plan needs, then
    resolves the registry steps of the pipelines that run."""
    try:
        selected = select_pipelines(wf, repo.pipelines, ref)
    except WerckerFileError:
        _log_problems(problems, log)
        raise
    boxless = [p.name for p in selected if wf.box_for(p) is None]
    kind = runners.kind_for(boxless, log)
    found = sorted([*problems, *lint_for_runner(wf, kind)], key=lambda p: (p.loc.line, p.loc.col))
    _log_problems(found, log)
    packages = _resolve_packages(wf, selected, repo.deploy_target, steps or StepSources(), log)
    errors = blocking_problems(found, selected, repo.deploy_target)
    unresolved = [p for p in packages.values() if isinstance(p, Problem)]
    if errors or unresolved:
        _log_problems(unresolved, log)
        errors = sorted([*errors, *unresolved], key=lambda p: (p.loc.line, p.loc.col))
        more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
        raise WerckerFileError(errors[0].short() + more, list[object](errors))
    warnings: list[Problem] = []
    timeouts = Timeouts(*timeouts_for(wf))
    lookup = {**repo.env, **repo.secrets}
    pipelines = []
    for position, spec in enumerate(selected):
        main = _main_steps(wf, spec, repo.deploy_target, warnings, log)
        box_spec = wf.box_for(spec)
        box = None if box_spec is None else _planned_box(box_spec, lookup, registries, log)
        pipelines.append(
            PlannedPipeline(
                name=spec.name,
                position=position,
                steps=tuple(main),
                after_steps=tuple(spec.after_steps),
                box=box,
                base_path=spec.base_path,
                source_dir=wf.source_dir,
                timeouts=timeouts,
                deploy_target=repo.deploy_target,
                deploy=position > 0 or spec.name == "deploy",
                runner_kind=kind,
                packages=_packages_of([*main, *spec.after_steps], packages),
                services=_planned_services(wf, spec, lookup, registries, log),
            )
        )
    return Plan(wf.path, tuple(pipelines), kind, tuple(found), tuple(warnings))


def _main_steps(
    wf: WerckerFile,
    spec: PipelineSpec,
    deploy_target: str | None,
    warnings: list[Problem],
    log: Log,
) -> list[StepSpec]:
    """``steps_for`` with its warnings logged; raises ``WerckerFileError`` for a pipeline
    with only deploy targets and none chosen."""
    notes: list[Problem] = []
    steps = steps_for(spec, deploy_target, notes)
    for note in notes:
        log.warn(note.format())
    warnings.extend(notes)
    if not steps and spec.targets:
        # Running nothing and reporting success would hide that the deploy never ran.
        raise WerckerFileError(
            f"{wf.path} line {spec.loc.line}: pipeline '{spec.name}' has only deploy "
            f"targets ({', '.join(spec.targets)}); set deploy_target for this repository",
            list(notes),
        )
    return steps


def is_package_step(step_id: str) -> bool:
    """Whether a step id names a step package (a registry step): anything but ``script``
    and the ``internal/`` steps, which the bot implements itself."""
    return step_id != "script" and not step_id.startswith("internal/")


def _resolve_packages(
    wf: WerckerFile,
    selected: Sequence[PipelineSpec],
    deploy_target: str | None,
    sources: StepSources,
    log: Log,
) -> dict[str, StepPackage | Problem]:
    """Each registry step id of the pipelines that run → its package, or the located
    error (where the id is first written) when it resolves to nothing."""
    out: dict[str, StepPackage | Problem] = {}
    for spec in selected:
        for step in [*steps_for(spec, deploy_target, []), *spec.after_steps]:
            if not is_package_step(step.id) or step.id in out:
                continue
            try:
                out[step.id] = sources.resolve(step.id, log)
            except Unresolved as err:
                out[step.id] = Problem(step.loc, "error", str(err), err.hint, spec.name)
    return out


def _packages_of(
    steps: Sequence[StepSpec], packages: Mapping[str, StepPackage | Problem]
) -> Mapping[str, StepPackage]:
    found = {s.id: packages[s.id] for s in steps if s.id in packages}
    return MappingProxyType({k: v for k, v in found.items() if isinstance(v, StepPackage)})


def _planned_box(
    box: BoxSpec,
    lookup: Mapping[str, str],
    registries: Mapping[str, RegistrySettings],
    log: Log,
) -> PlannedBox:
    image, env = resolve_box(box, lookup, registries, log)
    # The box's credentials are secrets from now on, wherever the log shows them.
    log.add_secrets(image.auth.secrets())
    return PlannedBox(image, MappingProxyType(env))


# Service keys that are not about pulling the image (resolve_box sees only the others).
_SERVICE_RUN_KEYS = ("name", "cmd", "entrypoint", "ports", "volumes", "url")


def _planned_services(
    wf: WerckerFile,
    spec: PipelineSpec,
    lookup: Mapping[str, str],
    registries: Mapping[str, RegistrySettings],
    log: Log,
) -> tuple[ServiceBox, ...]:
    """A pipeline's services (its own list replaces the file's; ``[]`` disables them),
    each named by its ``name`` or the last path part of its repository."""
    out = []
    for service in wf.services if spec.services is None else spec.services:
        pulled = {k: v for k, v in service.options.items() if k not in _SERVICE_RUN_KEYS}
        image, env = resolve_box(service.with_options(pulled), lookup, registries, log)
        log.add_secrets(image.auth.secrets())
        name = service.options.get("name") or image.repository.rsplit("/", 1)[-1]
        cmd, entrypoint = (service.options.get(k) for k in ("cmd", "entrypoint"))
        out.append(
            ServiceBox(
                name=name,
                image=image,
                env=MappingProxyType(env),
                cmd=tuple(shlex.split(cmd)) if cmd else None,
                entrypoint=tuple(shlex.split(entrypoint)) if entrypoint else None,
            )
        )
    return tuple(out)


def resolve_box(
    box: BoxSpec,
    lookup: Mapping[str, str],
    registries: Mapping[str, RegistrySettings],
    log: Log,
) -> tuple[ImageRef, dict[str, str]]:
    """Expands the box's id, options and env, and resolves where to pull it from."""
    options = {
        key: expand(value, lookup, option=key, strict=is_strict(key))[0]
        for key, value in box.options.items()
    }
    image, _ = expand(box.id, lookup, option="box", strict=False)
    tag = options.pop("tag", "")
    if tag:  # the box's ``tag`` option replaces a tag written in its id
        image = f"{without_reference(image)}:{tag}"
    ref = target_of_box(image, options, registries=registries, log=log)
    env = {k: expand(v, lookup, option=f"box env {k}", strict=False)[0] for k, v in box.env.items()}
    return ref, env


def _log_problems(problems: Sequence[Problem], log: Log) -> None:
    for problem in problems:
        log.info(problem.format())
