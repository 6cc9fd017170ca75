"""Checks on one box or one step of a parsed wercker.yml: unknown and retired options (with
a did-you-mean), options the bot ignores, partial credentials, tags, ports and shell words.
``lint`` runs them over the whole file.

Messages never contain option values that could be credentials; they name options instead.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable

from bot.errors import StepConfigError
from bot.imageref import DOCKER_HUB_ALIASES, looks_like_host, split_image_ref, without_reference
from bot.wercker import schema
from bot.wercker.model import BoxSpec, Loc, Problem, Severity, StepSpec

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
    "internal/store-container": "a pipeline's output dir is handed to the next pipeline",
    "internal/publish-step": "the Wercker step registry is gone",
}


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


def check_box(box: BoxSpec, pipeline: str | None, *, service: bool = False) -> list[Problem]:
    """A box or service: unknown keys, keys Wercker knew that the bot ignores, partial
    credentials. Known and used keys are ``schema.BOX_USED_KEYS``."""
    what = "service" if service else "box"
    check = _Checker(pipeline)
    known = schema.SERVICE_KEYS if service else schema.BOX_KEYS
    ignored = dict(schema.BOX_IGNORED_KEYS)
    if service:  # a service is started with its own cmd and entrypoint, named by its name
        ignored = {k: v for k, v in ignored.items() if k not in ("cmd", "entrypoint")}
    check.unknown(what, box.options, box.option_locs, known, box.loc, _BOX_ONLY_IN_SERVICE)
    for key, value in box.options.items():
        if key == "cmd" and value.strip() in _PLAIN_SHELLS and not service:
            continue  # the shell the bot picks anyway (bash when the box has it, else sh)
        if key in ignored:
            check.add(
                box.option_locs.get(key, box.loc),
                "warning",
                f"{what} option '{key}' is ignored by wercker-bot",
                ignored[key],
            )
    _credentials(check, box.options, box.option_locs, box.loc, what)
    _registry_hosts(check, box.options, box.option_locs, box.loc, box.id, box.id_loc)
    _box_image(check, box, what)  # a service is pulled like the box (docker runner)
    return check.out


def _box_image(check: _Checker, box: BoxSpec, what: str = "box") -> None:
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
        message, hint = f"{what} {err}", "an image is [host[:port]/]name[:tag][@sha256:digest]"
        if name != name.lower() and _parses(lowered):
            message = f"{what} image {box.id.strip()!r} is not a valid image reference"
            hint = f"repository names must be lower-case, e.g. {lowered}"
        check.add(box.id_loc or box.loc, "error", message, hint)


def _parses(image: str) -> bool:
    try:
        split_image_ref(image)
    except StepConfigError:
        return False
    return True


def check_step(step: StepSpec, pipeline: str) -> list[Problem]:
    check = _Checker(pipeline)
    if step.id == "script":
        # A script without code never gets here: the reader skips it with a warning.
        check.unknown("script", step.options, step.option_locs, schema.SCRIPT_OPTIONS, step.loc)
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
    """A registry step id is resolved to a step package at plan time (``bot.plan``, where
    the bot's ``[steps]`` sources are known); here only an id that cannot be one is found."""
    if re.search(r"\s", step.id):
        check.add(
            step.loc,
            "error",
            f"step '{step.id}' is not a step id",
            "this looks like a shell command: put it in a script step's 'code'",
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
        repository = opts.get("repository", "")
        _registry_hosts(check, opts, locs, step.loc, repository, locs.get("repository"))
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


def _host(text: str, *, registry: bool = False) -> str:
    """The host of a registry (URL or bare host) or of an image reference, lower-case, with
    no port; ``""`` when an image names none (a Docker Hub ``user/app``)."""
    text = text.strip().lower()
    if "://" in text:
        text, registry = text.split("://", 1)[1], True
    first = text.split("/", 1)[0]
    if registry or ("/" in text and looks_like_host(first)):
        return first.split(":", 1)[0]
    return ""


def _looks_like_docker_hub(host: str) -> bool:
    """``dockerhub.com``, ``www.docker.com``…: names people write for Docker Hub that are not
    its registry (``imageref.DOCKER_HUB_ALIASES`` are, and pass)."""
    squashed = host.removeprefix("www.").replace(".", "").replace("-", "")
    return host not in DOCKER_HUB_ALIASES and (
        "dockerhub" in squashed or "hubdocker" in squashed or squashed == "dockercom"
    )


def _registry_hosts(
    check: _Checker,
    opts: dict[str, str],
    locs: dict[str, Loc],
    fallback: Loc,
    image: str,
    image_loc: Loc | None,
) -> None:
    """Warnings for a ``registry`` that is not Docker Hub's though it looks like it, and for
    ``wcr.io`` (Wercker's hosted registry, shut down in 2018) used without credentials, in
    ``registry`` or in the image or repository ``image``. With ``$VAR`` the value is known
    only at run time. Messages name hosts, never credentials."""
    registry = opts.get("registry", "")
    registry_loc = locs.get("registry", fallback)
    if "$" not in registry and _looks_like_docker_hub(host := _host(registry, registry=True)):
        check.add(
            registry_loc,
            "warning",
            f"registry '{host}' is not Docker Hub's registry; the image would go to a host "
            "that serves none",
            "for Docker Hub leave 'registry' out (or write https://registry.hub.docker.com)",
        )
    has_credentials = bool(opts.get("username", "").strip() and opts.get("password", "").strip())
    hosts = ((_host(registry, registry=True), registry_loc), (_host(image), image_loc))
    for host, loc in hosts:
        if host == "wcr.io" and not has_credentials:
            check.add(
                loc or fallback,
                "warning",
                "wcr.io was Wercker's hosted registry, shut down in 2018, and no 'username' "
                "and 'password' are given: pulling or pushing there fails",
                "use a registry you run or Docker Hub, with 'username' and 'password' (or "
                "its entry in the bot's [registries] table)",
            )
            return


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
