"""Checks on a parsed wercker.yml: what Wercker silently ignored or this bot cannot run.

- ``lint_file(wf)``: every runner-independent problem. ``parse.load_text`` already includes
  these, so callers of ``load_dir``/``load_text`` do not call it again.
- ``lint_for_runner(wf, runner_kind)``: only the problems that depend on the runner kind
  (``internal/docker-build`` needs the docker runner). Add them to the load problems.
- ``check_file(path, runner_kind)``: both, for ``wercker-bot check FILE``.
- ``problems_to_json``: the ``--format json`` shape.

Messages never contain option values that could be credentials; they name options instead.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from bot.errors import StepConfigError
from bot.imageref import split_image_ref, without_reference
from bot.wercker import schema
from bot.wercker.model import BoxSpec, Loc, PipelineSpec, Problem, Severity, StepSpec, WerckerFile

_PORT = re.compile(r"([0-9]{1,5})(/(tcp|udp))?")
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")  # distribution/reference tag grammar
# Options Wercker itself dropped; they get a reason instead of a did-you-mean.
_RETIRED = {
    "force-tags": "Wercker removed it; existing tags are always overwritten",
    "insecure": "configure the registry as insecure in the bot's [registries] table",
}
# A box ``cmd`` that only names a shell asks for what the bot does anyway: nothing is lost.
_PLAIN_SHELLS = frozenset({"sh", "bash", "/bin/sh", "/bin/bash", "/usr/bin/bash"})
# Hints for service-only keys written in a box.
_BOX_ONLY_IN_SERVICE = {key: "only a service has it" for key in schema.SERVICE_ONLY_KEYS}
_UNSUPPORTED_HINTS = {
    "internal/docker-run": "start the containers the build needs outside the bot",
    "internal/docker-kill": "start the containers the build needs outside the bot",
    "internal/store-container": "a pipeline's output dir is handed to the next pipeline",
    "internal/publish-step": "the Wercker step registry is gone",
    "internal/watch": "it was a Wercker dev-mode step",
    "internal/shell": "it was a Wercker dev-mode step",
}


def check_file(path: Path, runner_kind: str | None = None) -> list[Problem]:
    """Every problem in the file at ``path`` (or in the wercker.yml of the directory
    ``path``): parse, lint and, given a runner kind, the runner-specific lint, sorted by
    position. Locations name the path as given, so editors can jump to them. Never raises."""
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
    return sorted(problems, key=lambda p: (p.loc.line, p.loc.col))


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


def lint_for_runner(wf: WerckerFile, runner_kind: str) -> list[Problem]:
    """Problems that depend on where steps run: ``local`` (sandboxed or ``local-unsafe``)
    cannot run ``internal/docker-build`` or give a pipeline ``docker: true``; ``auto`` may
    pick local, so those are warnings. ``docker`` (or any other kind) adds nothing. Does NOT
    repeat ``lint_file``'s problems."""
    if runner_kind not in ("local", "local-unsafe", "auto"):
        return []
    on_host = runner_kind != "auto"
    severity: Severity = "error" if on_host else "warning"
    tail = "" if on_host else "; it fails if the auto runner picks local"
    out: list[Problem] = []
    for pipeline in wf.pipelines.values():
        for step in _all_steps(pipeline):
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


def _service_not_started(service: BoxSpec, pipeline: str | None) -> Problem:
    # Said out loud rather than silently ignored: a step that expects the service fails.
    return Problem(
        service.loc,
        "warning",
        f"service '{service.id}' is not started by wercker-bot",
        "steps that connect to it will fail; run it next to the bot and pass its address "
        "in the repository's env",
        pipeline,
    )


def lint_file(wf: WerckerFile) -> list[Problem]:
    """Every runner-independent problem of a parsed file."""
    out: list[Problem] = []
    if wf.box is not None:
        out.extend(_box(wf.box, None))
    for service in wf.services:
        out.extend(_box(service, None, service=True))
        out.append(_service_not_started(service, None))
    for pipeline in wf.pipelines.values():
        if pipeline.box is not None:
            out.extend(_box(pipeline.box, pipeline.name))
        for service in pipeline.services or []:
            out.extend(_box(service, pipeline.name, service=True))
            out.append(_service_not_started(service, pipeline.name))
        for step in _all_steps(pipeline):
            out.extend(_step(step, pipeline.name))
        out.extend(_built_images(pipeline))
    return out


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


def did_you_mean(word: str, known: Iterable[str]) -> str | None:
    """``"did you mean 'x'?"`` for the closest known word, or ``None``."""
    import difflib  # only for a file with an unknown key: ``check`` starts faster without it

    match = difflib.get_close_matches(word, sorted(known), n=1, cutoff=0.7)
    return f"did you mean '{match[0]}'?" if match else None


class _Checker:
    """Collects problems for one step or box, tagged with its pipeline."""

    def __init__(self, pipeline: str | None) -> None:
        self.pipeline = pipeline
        self.out: list[Problem] = []

    def add(self, loc: Loc, severity: Severity, message: str, hint: str | None = None) -> None:
        self.out.append(Problem(loc, severity, message, hint, self.pipeline))

    def unknown(
        self,
        what: str,
        options: dict[str, str],
        locs: dict[str, Loc],
        known: frozenset[str],
        fallback: Loc,
        hints: dict[str, str] | None = None,
    ) -> None:
        for key in options:
            if key not in known:
                self.add(
                    locs.get(key, fallback),
                    "warning",
                    f"unknown option '{key}' in {what}; it is ignored",
                    (hints or {}).get(key) or _RETIRED.get(key) or did_you_mean(key, known),
                )


def _box(box: BoxSpec, pipeline: str | None, *, service: bool = False) -> list[Problem]:
    """A box or service: unknown keys, keys Wercker knew that the bot ignores, partial
    credentials. Known and used keys are ``schema.BOX_USED_KEYS``."""
    what = "service" if service else "box"
    check = _Checker(pipeline)
    known = schema.SERVICE_KEYS if service else schema.BOX_KEYS
    ignored = {**schema.BOX_IGNORED_KEYS, **(schema.SERVICE_ONLY_KEYS if service else {})}
    check.unknown(what, box.options, box.option_locs, known, box.loc, _BOX_ONLY_IN_SERVICE)
    for key, value in box.options.items():
        if key == "cmd" and value.strip() in _PLAIN_SHELLS:
            continue  # the shell the bot picks anyway (bash when the box has it, else sh)
        if key in ignored:
            check.add(
                box.option_locs.get(key, box.loc),
                "warning",
                f"{what} option '{key}' is ignored by wercker-bot",
                ignored[key],
            )
    _credentials(check, box.options, box.option_locs, box.loc, what)
    if not service:  # services are never pulled
        _box_image(check, box)
    return check.out


def _box_image(check: _Checker, box: BoxSpec) -> None:
    """The box id must parse as the runner will parse it (``split_image_ref``, the grammar
    under ``bot.pushers.target.parse_image_ref``), else the build fails at pull time with no
    location. With ``$VAR`` it is known only at run time."""
    if "$" in box.id:
        return
    # A ``tag`` option replaces the id's own tag or digest (bot.pipeline.resolve_box).
    image = without_reference(box.id) if box.options.get("tag") else box.id
    try:
        split_image_ref(image)
    except StepConfigError as err:
        name = without_reference(box.id.strip())
        lowered = name.lower() + box.id.strip()[len(name) :]
        message, hint = f"box {err}", "an image is [host[:port]/]name[:tag][@sha256:digest]"
        if name != name.lower() and _parses(lowered):
            message = f"box image {box.id.strip()!r} is not a valid image reference"
            hint = f"repository names must be lower-case, e.g. {lowered}"
        check.add(box.id_loc or box.loc, "error", message, hint)


def _parses(image: str) -> bool:
    try:
        split_image_ref(image)
    except StepConfigError:
        return False
    return True


def _step(step: StepSpec, pipeline: str) -> list[Problem]:
    check = _Checker(pipeline)
    if step.id == "script":
        check.unknown("script", step.options, step.option_locs, schema.SCRIPT_OPTIONS, step.loc)
        if not step.option("code").strip():
            check.add(
                step.loc,
                "error",
                f"script step '{step.name}' has no code",
                "give it a 'code:' option with the commands to run",
            )
        return check.out
    if not step.id.startswith("internal/"):
        _registry_step(check, step)
        return check.out
    known = schema.STEP_OPTIONS.get(step.id)
    if known is None:
        runnable = sorted(schema.RUNNABLE_STEPS - {"script"})
        check.add(
            step.loc,
            "error",
            f"unknown internal step '{step.id}'",
            did_you_mean(step.id, runnable) or "wercker-bot runs " + ", ".join(runnable),
        )
        return check.out
    if step.id not in schema.RUNNABLE_STEPS:
        check.add(
            step.loc,
            "error",
            f"{step.id} is not supported by wercker-bot",
            _UNSUPPORTED_HINTS.get(step.id),
        )
        return check.out
    check.unknown(step.id, step.options, step.option_locs, known, step.loc)
    _options(check, step)
    return check.out


def _registry_step(check: _Checker, step: StepSpec) -> None:
    if re.search(r"\s", step.id):
        hint = "this looks like a shell command: put it in a script step's 'code'"
    else:
        hint = "replace it with a 'script' step that runs the same commands"
    check.add(
        step.loc,
        "error",
        f"step '{step.id}' comes from the Wercker step registry, which is gone; "
        "wercker-bot cannot fetch it",
        hint,
    )


def _options(check: _Checker, step: StepSpec) -> None:
    opts, locs = step.options, step.option_locs

    def at(key: str) -> Loc:
        return locs.get(key, step.loc)

    if step.id in schema.PUSH_STEPS:
        if not opts.get("repository", "").strip():
            check.add(
                step.loc,
                "error",
                f"{step.id} needs 'repository'",
                "name the image to push, e.g. 'repository: myorg/myapp'",
            )
        _credentials(check, opts, locs, step.loc, step.id)
        if "tag" in opts:
            _tags(check, opts["tag"], at("tag"))
    if step.id == schema.DOCKER_BUILD and not opts.get("image-name", "").strip():
        check.add(step.loc, "error", f"{step.id} needs 'image-name'")
    if "ports" in opts:
        _ports(check, opts["ports"], at("ports"))
    for key in ("cmd", "entrypoint", *sorted(schema.KV_OPTIONS)):
        if key in opts:
            _words(check, key, opts[key], at(key))
    sync = opts.get("disable-sync")
    if sync is not None and sync not in ("true", "false", ""):
        check.add(
            at("disable-sync"),
            "warning",
            f"'disable-sync' is only honoured when it is exactly true, not '{sync}'",
        )


def _credentials(
    check: _Checker, opts: dict[str, str], locs: dict[str, Loc], fallback: Loc, what: str
) -> None:
    for keys, service in ((schema.AWS_KEYS, "Amazon ECR"), (schema.AZURE_KEYS, "Azure ACR")):
        given = [k for k in keys if opts.get(k, "").strip()]
        missing = [k for k in keys if k not in given]
        if not given or not missing:
            continue
        if service == "Amazon ECR" and set(missing) == {"aws-access-key", "aws-secret-key"}:
            continue  # no keys at all: boto3's own credential chain (instance roles) is used
        hint = f"{service} needs all of {', '.join(keys)}"
        if service == "Amazon ECR":
            hint += ", or only aws-region and aws-registry-id to use boto3's credential chain"
        check.add(
            locs.get(given[0], fallback),
            "error",
            f"{what} has some {service} options but is missing {', '.join(missing)}",
            hint,
        )


def _tags(check: _Checker, value: str, loc: Loc) -> None:
    for piece in filter(None, re.split(r"[\s,]+", value)):
        if "$" not in piece and not _TAG.fullmatch(piece):  # with $VAR: known at run time
            check.add(
                loc,
                "error",
                f"invalid tag '{piece}' in 'tag'",
                "a tag is letters, digits, '_', '.' and '-' (not first), at most 128",
            )


def _ports(check: _Checker, value: str, loc: Loc) -> None:
    if "$" in value:
        return  # known only at run time
    for piece in filter(None, re.split(r"[\s,]+", value)):
        match = _PORT.fullmatch(piece)
        if not match or not 0 < int(match.group(1)) < 65536:
            check.add(
                loc,
                "error",
                f"invalid port '{piece}' in 'ports'",
                "each port is N, N/tcp or N/udp (1-65535), separated by commas or spaces",
            )


def _words(check: _Checker, key: str, value: str, loc: Loc) -> None:
    try:
        words = shlex.split(value)
    except ValueError as err:
        check.add(loc, "error", f"'{key}' is not valid shell words: {err}", "check the quotes")
        return
    if key not in schema.KV_OPTIONS:
        return
    for word in words:
        name, sep, _ = word.partition("=")
        if not sep or not name:
            # Show only the name part: the word may hold a secret value.
            shown = name if sep else word[:30]
            check.add(
                loc,
                "error",
                f"'{key}' entry '{shown}' is not of the form NAME=value",
                "quote entries that contain spaces: NAME='two words'",
            )
