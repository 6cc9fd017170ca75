"""The shell wrapper both runners use to run one script step.

The step's code is written to a file and *sourced* by a wrapper, as Wercker did, so that
``export``s survive into the env dump (Wercker's env sync). Every value reaches the shell as
an environment variable: nothing from a branch name or the config is pasted into shell text.
"""

from __future__ import annotations

# Wercker's wercker-init step defined these helpers; real files call them.
WRAPPER = r"""
if [ -n "${WB_BOT_PID:-}" ]; then
  # If the bot dies (even by SIGKILL), nothing of this step may run on with its secrets.
  ( while kill -0 "$WB_BOT_PID" 2>/dev/null; do sleep 1; done; kill -KILL 0 ) \
    </dev/null >/dev/null 2>&1 &
fi
__wb_dump() { env -0 > "$WB_ENV_DUMP" 2>/dev/null || true; }
trap __wb_dump EXIT
success() { echo "success: $*"; }
info() { echo "info: $*"; }
warn() { echo "warning: $*"; }
debug() { echo "debug: $*"; }
setMessage() { printf '%s' "$*" > "$WB_MESSAGE_FILE"; }
fail() { printf '%s' "$*" > "$WB_MESSAGE_FILE"; echo "failed: $*"; exit 1; }
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
    "WB_BOT_PID",
)


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
