"""One exception tree for wercker-bot.

Third-party exceptions (GitPython, docker, requests, botocore, yaml) are wrapped where they
cross a seam, so callers only ever catch these. Only the build orchestration decides whether a
problem makes an attempt ``failed`` (the user's code or the registry said no) or ``errored``
(config or infrastructure).

    WerckerBotError
    ├── ConfigError               the bot's own TOML config is invalid
    ├── WebhookError              a delivery that cannot be accepted (has an HTTP status)
    ├── CheckoutError             clone/fetch of the pushed commit failed            → errored
    ├── WerckerFileError          wercker.yml missing pipelines or invalid (problems) → errored
    ├── InfrastructureError       runner, daemon, disk: the bot could not do its job  → errored
    │   └── StoreUnavailable      the store cannot write (disk full, I/O, locked)      → 503
    └── StepError                 a step could not complete                           → failed
        ├── StepConfigError       an option is missing, undefined or malformed
        ├── StepTimeout           command-timeout or no-response-timeout hit
        └── PushError             pushing an image failed
            └── RegistryError     the registry refused or could not be reached
                ├── RegistryAuthError     credentials rejected / push denied
                └── RegistryUnavailable   connection refused, DNS, retries exhausted
"""

from __future__ import annotations


class WerckerBotError(Exception):
    """Root of every error this package raises on purpose.

    ``str(err)`` is a one-line message meant for a user: what was wrong, where, and what to do.
    """


class ConfigError(WerckerBotError):
    """The bot's TOML configuration is invalid. ``key`` names the offending key path."""

    def __init__(self, message: str, key: str | None = None) -> None:
        self.key = key
        super().__init__(f"config {key}: {message}" if key else message)


class WebhookError(WerckerBotError):
    """A webhook delivery that is rejected; ``status`` is the HTTP status to answer."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        super().__init__(message)


class CheckoutError(WerckerBotError):
    """Cloning or checking out the pushed commit failed."""


class WerckerFileError(WerckerBotError):
    """wercker.yml cannot be run. ``problems`` holds every located problem found."""

    def __init__(self, message: str, problems: list[object] | None = None) -> None:
        self.problems = problems or []
        super().__init__(message)


class InfrastructureError(WerckerBotError):
    """The bot could not do its job: a runner, daemon or disk failed."""


class StepError(WerckerBotError):
    """A step did not complete. ``exit_code`` is recorded on the step."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        self.exit_code = exit_code
        super().__init__(message)


class StepConfigError(StepError):
    """A step option is missing, undefined or malformed."""


class StepTimeout(StepError):
    """A step hit ``command-timeout`` or ``no-response-timeout``; the message names which."""


class PushError(StepError):
    """Pushing an image failed."""


class RegistryError(PushError):
    """The registry refused the push or answered something we cannot use."""


class RegistryAuthError(RegistryError):
    """The registry rejected the credentials or denied the push."""


class RegistryUnavailable(RegistryError):
    """The registry could not be reached, or kept failing after retries."""


class StoreUnavailable(InfrastructureError):
    """The store could not write (disk full, I/O error, database locked for too long).

    ``reason`` is SQLite's own one-line message, e.g. ``database or disk is full``. Nothing
    of the failed transaction was kept, so the caller may retry it later as a whole: the
    intake answers 503 so the delivery is redelivered, not lost.
    """

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"the store cannot write: {reason}")
