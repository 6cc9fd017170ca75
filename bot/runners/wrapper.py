"""The shell wrapper both runners use to run one script step.

The step's code is *sourced* by a wrapper, as Wercker did, so that ``export``s survive into
the env dump (Wercker's env sync). Every value reaches the shell as an environment variable
or an argument: nothing from a branch name or the config is pasted into shell text.

The wrapper and the code travel as arguments of the shell (``command``), never as files the
bot writes: a box or a sandboxed step can plant symlinks anywhere it may write, so the bot
writes nothing where a step can write. The wrapper itself writes the code to ``WB_SCRIPT``
(a path inside the box or sandbox) and sources it. What the step leaves behind for the bot
(``WB_ENV_DUMP``, ``WB_MESSAGE_FILE``) is read back by each runner without following links
and never past ``MAX_HELPER_BYTES``.
"""

from __future__ import annotations

from bot.errors import StepConfigError

# Wercker's wercker-init step defined these helpers; real files call them.
WRAPPER = r"""
__wb_dump() { env -0 > "$WB_ENV_DUMP" 2>/dev/null || true; }
trap __wb_dump EXIT
success() { echo "success: $*"; }
info() { echo "info: $*"; }
warn() { echo "warning: $*"; }
debug() { echo "debug: $*"; }
setMessage() { printf '%s' "$*" > "$WB_MESSAGE_FILE"; }
fail() { printf '%s' "$*" > "$WB_MESSAGE_FILE"; echo "failed: $*"; exit 1; }
rm -f "$WB_SCRIPT" 2>/dev/null
printf '%s' "$1" > "$WB_SCRIPT" || { echo "cannot write the step script" >&2; exit 1; }
set --
cd "$WB_CWD" || { echo "cannot cd into $WB_CWD" >&2; exit 1; }
if [ "$WB_SET_E" = "1" ]; then set -e; fi
. "$WB_SCRIPT"
"""

HELPER_VARS = (
    "WB_ENV_DUMP",
    "WB_MESSAGE_FILE",
    "WB_CWD",
    "WB_SET_E",
    "WB_SCRIPT",
)

MAX_CODE_BYTES = 100 * 1024
"""A step's code travels as one argument; Linux caps one argument at 128 KiB."""

MAX_HELPER_BYTES = 4 * 1024 * 1024
"""The most the bot reads of an env dump or a message file a step left behind."""

MAX_MESSAGE_CHARS = 4096


def command(shell: str, code: str) -> list[str]:
    """The argv that runs ``code`` through the wrapper in ``shell``. Raises
    ``StepConfigError`` when the code is too long to pass."""
    size = len(code.encode("utf-8"))
    if size > MAX_CODE_BYTES:
        raise StepConfigError(
            f"the step's code is {size // 1024} KiB; the limit is {MAX_CODE_BYTES // 1024} KiB: "
            "move it into a script file in the repository and run that"
        )
    return [shell, "-c", WRAPPER, "wercker-step", code]


def wants_set_e(code: str) -> bool:
    """``set -e`` is prepended unless the code starts with ``#!`` (Wercker's rule)."""
    return not code.lstrip().startswith("#!")


def parse_env_dump(data: bytes) -> dict[str, str]:
    """Parses ``env -0`` output; the wrapper's own variables are dropped."""
    env: dict[str, str] = {}
    for item in data.split(b"\0"):
        if not item or b"=" not in item:
            continue
        key, _, value = item.decode("utf-8", "replace").partition("=")
        if key in HELPER_VARS or key.startswith("BASH_FUNC_"):
            continue
        env[key] = value
    return env


def parse_message(data: bytes) -> str:
    """The text a step left with ``fail``/``setMessage``, cut to ``MAX_MESSAGE_CHARS``."""
    text = data.decode("utf-8", "replace").strip()
    if len(text) > MAX_MESSAGE_CHARS:
        text = text[:MAX_MESSAGE_CHARS] + "…"
    return text
