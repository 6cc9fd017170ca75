"""The ``script`` step: the ``code`` option, run by the session's shell under ``set -e``."""

from __future__ import annotations

import posixpath

from bot.errors import StepConfigError, StepError, StepTimeout
from steps.base import StepContext, StepOutcome


class ScriptStep:
    def run(self, ctx: StepContext) -> StepOutcome:
        code = ctx.step.options.get("code")
        if code is None or not code.strip():
            raise StepConfigError(f"step '{ctx.step.name}' has no code")
        cwd = ctx.env.get("WERCKER_SOURCE_DIR", ctx.session.paths.source)
        if ctx.step.cwd:
            cwd = posixpath.normpath(posixpath.join(cwd, ctx.step.cwd))
        result = ctx.session.run_script(
            code, env=ctx.env, secrets=ctx.secrets, cwd=cwd, timeouts=ctx.timeouts, log=ctx.log
        )
        if result.timed_out:
            limit = (
                ctx.timeouts.command
                if result.timed_out == "command-timeout"
                else ctx.timeouts.no_response
            )
            raise StepTimeout(
                f"Step '{ctx.step.name}' killed by {result.timed_out} "
                f"(no {'completion' if result.timed_out == 'command-timeout' else 'output'} "
                f"in {_human(limit)})",
                exit_code=124,  # GNU timeout's convention, the same on every runner
            )
        if result.exit_code != 0:
            raise StepError(
                f"Step '{ctx.step.name}' failed (exit {result.exit_code})", result.exit_code
            )
        return StepOutcome(env=result.env)


def _human(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{int(seconds // 60)} min"
    return f"{seconds:g} s"
