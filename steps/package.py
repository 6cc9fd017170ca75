"""Registry steps: a step package (``bot.stepsources.StepPackage``, resolved by the plan)
run the way the Wercker CLI ran it (wercker-steps.md §1.4-1.6, spec §1.6).

- The package directory is copied into the box as a fresh ``<name>-<uuid>`` directory
  (``WERCKER_STEP_ROOT``): on the docker runner through the engine's archive API into
  ``/pipeline`` (never a bind mount of a host path), on the local runner into the step's
  home, files read-only. Links are copied as links, never followed.
- ``run.sh`` is *sourced* (``< /dev/null``) through the runner's session, like a script
  step, but without ``set -e``: its status is the status of its last command, ``fail``
  and ``exit`` end it.
- Options become ``WERCKER_<NAME>_<OPTION>`` (``-`` → ``_``, upper-cased); every declared
  property is exported, its default filling a missing option; YAML booleans are
  ``true``/``false``. Each value is exported the way Wercker's ``export KEY="%q"`` line
  did: ``$VAR`` in it is expanded by the box's shell, a newline arrives as ``\\n``.
- ``WERCKER_REPORT_MESSAGE_FILE`` is the session's message file: what ``fail``,
  ``setMessage`` or the step itself write there is the step's message (in the commit
  status when the step fails). ``WERCKER_STEP_TEMP`` is a fresh temp dir.
- What the step exports reaches later steps (env sync), as for a script step.
"""

from __future__ import annotations

import posixpath
import re
import uuid

from bot.errors import InfrastructureError, StepError, StepTimeout
from bot.runners.base import Session
from bot.stepsources import StepPackage
from steps.base import StepContext, StepOutcome

MAX_MESSAGE_BYTES = 4096
_ENV_NAME = re.compile(r"[A-Z_][A-Z0-9_]*")
_TRUE = frozenset({"y", "yes", "on", "true"})
_FALSE = frozenset({"n", "no", "off", "false"})
# Options the step itself does not see (``name``/``cwd`` never reach ``options``).
_NOT_EXPORTED = frozenset({"code", "name"})
# Per-step values a later step must not inherit through the env sync.
_NOT_SYNCED = ("WB_", "WERCKER_REPORT_", "WERCKER_STEP_")

# Constant shell text: every value arrives as an environment variable. The options are
# exported with ``eval`` on purpose: Wercker's ``export KEY="<value>"`` lines expanded
# ``$VAR`` and ``$(...)`` in the wercker.yml's own option text, and real steps rely on it
# (``token: $GITHUB_TOKEN``). The value is escaped (``_quote``) so it cannot end the quotes.
RUNNER = r"""#!wercker-bot step package (sourced without set -e, as Wercker did)
__wb_report="${WB_MESSAGE_FILE}.report"
mkdir -p "$__wb_report/artifacts" 2>/dev/null
WERCKER_REPORT_MESSAGE_FILE="$WB_MESSAGE_FILE"
WERCKER_REPORT_NUMBERS_FILE="$__wb_report/numbers.ini"
WERCKER_REPORT_ARTIFACTS_DIR="$__wb_report/artifacts"
export WERCKER_REPORT_MESSAGE_FILE WERCKER_REPORT_NUMBERS_FILE WERCKER_REPORT_ARTIFACTS_DIR
WERCKER_STEP_TEMP=$(mktemp -d 2>/dev/null) || WERCKER_STEP_TEMP=/tmp
export WERCKER_STEP_TEMP
for __wb_n in $WB_PKG_OPTS; do
  eval "__wb_v=\$WB_O_$__wb_n"
  eval "export $__wb_n=\"$__wb_v\"" || echo "warning: cannot set $__wb_n" >&2
  unset "WB_O_$__wb_n"
done
unset __wb_n __wb_v __wb_report WB_PKG_OPTS
__wb_take_message() {
  if [ -f "$WB_MESSAGE_FILE" ] && [ ! -L "$WB_MESSAGE_FILE" ]; then
    WB_PKG_MESSAGE=$(head -c 4096 "$WB_MESSAGE_FILE" 2>/dev/null); export WB_PKG_MESSAGE
  fi
}
trap '__wb_take_message; __wb_dump' EXIT
. "$WERCKER_STEP_ROOT/run.sh" < /dev/null
"""


class PackageStep:
    """Runs ``ctx.package`` (see the module docstring). Raises ``StepError`` with the
    step's message when it fails, ``StepTimeout`` when a timeout killed it,
    ``InfrastructureError`` when the package could not be copied into the box."""

    def run(self, ctx: StepContext) -> StepOutcome:
        package = ctx.package
        if package is None:  # the plan resolves every registry step; this is a bug of ours
            raise InfrastructureError(f"step '{ctx.step.id}' has no resolved package")
        safe = f"{package.id.name}-{uuid.uuid4()}"
        root = stage(ctx.session, package, safe)
        env = {**ctx.env, **step_vars(package, safe, root), **option_env(ctx)}
        cwd = ctx.env.get("WERCKER_SOURCE_DIR", ctx.session.paths.source)
        if ctx.step.cwd:
            cwd = posixpath.normpath(posixpath.join(cwd, ctx.step.cwd))
        result = ctx.session.run_script(
            RUNNER, env=env, secrets=ctx.secrets, cwd=cwd, timeouts=ctx.timeouts, log=ctx.log
        )
        if result.timed_out:
            raise StepTimeout(f"Step '{ctx.step.name}' killed by {result.timed_out}", exit_code=124)
        left = dict(result.env)
        message = left.pop("WB_PKG_MESSAGE", "").strip()
        if result.exit_code != 0:
            raise StepError(
                message or f"Step '{ctx.step.name}' failed (exit {result.exit_code})",
                result.exit_code,
            )
        exported = {k: v for k, v in left.items() if not k.startswith(_NOT_SYNCED)}
        return StepOutcome(exit_code=0, message=message, env=exported)


def step_vars(package: StepPackage, safe: str, root: str) -> dict[str, str]:
    """``WERCKER_STEP_*`` of a package step (wercker-steps.md §1.5)."""
    return {
        "WERCKER_STEP_ROOT": root,
        "WERCKER_STEP_ID": safe,
        "WERCKER_STEP_NAME": package.id.name,
        "WERCKER_STEP_OWNER": package.id.owner,
    }


def env_name(step_name: str, option: str) -> str:
    """Wercker's mangling: ``WERCKER_<name>_<option>``, ``-`` → ``_``, upper-cased."""
    return f"WERCKER_{step_name}_{option}".replace("-", "_").upper()


def option_values(ctx: StepContext) -> dict[str, str]:
    """Variable name → value: every declared property (the option if given, even empty,
    else the default), then every other option. YAML booleans become true/false."""
    assert ctx.package is not None
    name = ctx.package.id.name
    given = {k: _coerce(v) for k, v in ctx.step.options.items() if k not in _NOT_EXPORTED}
    values = {env_name(name, p.name): given.get(p.name, p.default) for p in ctx.package.properties}
    for key, value in given.items():
        values[env_name(name, key)] = value
    return values


def option_env(ctx: StepContext) -> dict[str, str]:
    """The step's options as the variables ``RUNNER`` exports: ``WB_PKG_OPTS`` lists the
    names, ``WB_O_<name>`` holds each escaped value. A name that is no shell identifier is
    skipped with a warning (Wercker's export line failed)."""
    env: dict[str, str] = {}
    names = []
    for key, value in option_values(ctx).items():
        if not _ENV_NAME.fullmatch(key):
            ctx.log.warn(f"option {key!r} of step '{ctx.step.name}' is no variable name; skipped")
            continue
        names.append(key)
        env[f"WB_O_{key}"] = _quote(value)
    env["WB_PKG_OPTS"] = " ".join(names)
    return env


def _coerce(value: str) -> str:
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return "true"
    if lowered in _FALSE:
        return "false"
    return value


def _quote(value: str) -> str:
    """The inside of Go's ``%q`` as Wercker wrote it, read by a double-quoted shell word:
    ``\\`` ``"`` and backquotes escaped, control characters as two-character escapes."""
    out = []
    for char in value:
        if char in '\\"`':
            out.append("\\" + char)
        elif char == "\n":
            out.append("\\n")
        elif char == "\t":
            out.append("\\t")
        elif char == "\r":
            out.append("\\r")
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\x{ord(char):02x}")
        else:
            out.append(char)
    return "".join(out)


def stage(session: Session, package: StepPackage, safe: str) -> str:
    """Copies the package into the box as ``safe`` and returns its guest path
    (``Session.put_dir``: links stay links, a linked ``run.sh`` is refused, bounded)."""
    return session.put_dir(package.directory, safe)
