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
    │   ├── StoreUnavailable      the store cannot be used (disk full, I/O, locked, down) → 503
    │   └── RegistryUnavailable*  a registry the bot cannot reach: refused, DNS, TLS,
    │                             timeouts or 5xx after retries (box and service pulls on
    │                             the Docker Engine included)
    └── StepError                 a step could not complete                           → failed
        ├── StepConfigError       an option is missing, undefined or malformed
        ├── StepTimeout           command-timeout or no-response-timeout hit
        └── PushError             pushing an image failed
            └── RegistryError*    the registry answered no (or something unusable)
                ├── RegistryAuthError     credentials rejected / push denied
                └── UnknownRegistryHost   a host the user named (the step's repository/
                                          registry, wercker.yml box or services) does not
                                          resolve

    * also a ``RegistryProblem``: typed facts ``registry``, ``repository``, ``action``,
      ``http_status`` and ``codes``, so no caller ever classifies a registry error by its
      message. Catch ``RegistryProblem`` for "anything the registry did".
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


class RegistryProblem(WerckerBotError):
    """What every registry error carries, as facts rather than words in its message.

    ``registry`` is the host (``host[:port]``) as images name it; ``repository`` the
    repository in play (None when none was, e.g. ``ping``); ``action`` one of ``push``,
    ``pull``, ``auth``, ``ping``, ``create repository``, ``look up repository``; ``http_status``
    the registry's HTTP status (None for a transport failure; through a Docker Engine, the
    engine's own 4xx status, or the status the registry's error code stands for, since the
    engine answers 500 for most registry refusals);
    ``codes`` the registry's ``errors[].code`` values (``DENIED``, ``UNAUTHORIZED``,
    ``NAME_UNKNOWN``, ``MANIFEST_INVALID``...), or AWS error codes for the ECR API.
    """

    def __init__(
        self,
        message: str,
        *,
        registry: str = "",
        repository: str | None = None,
        action: str = "",
        http_status: int | None = None,
        codes: tuple[str, ...] = (),
    ) -> None:
        self.registry = registry
        self.repository = repository
        self.action = action
        self.http_status = http_status
        self.codes = tuple(codes)
        super().__init__(message)


class RegistryError(RegistryProblem, PushError):
    """The registry refused the push (or the pull of the box, a service or the base image)
    or answered something we cannot use (→ failed)."""


class RegistryAuthError(RegistryError):
    """The registry rejected the credentials or denied the push."""


class UnknownRegistryHost(RegistryError):
    """A registry host the user named does not resolve (DNS says no such host): the user's
    mistake, so the step (or the pipeline) fails. The host was named in the step's own
    ``repository``/``registry`` option, or in wercker.yml's ``box`` or ``services``.

    ``host`` is the host that does not resolve; ``named_in`` where the user named it, as the
    message says it (``the step's 'repository' (or 'registry') option``, ``wercker.yml
    'box'``). ``named`` builds the one message every path gives."""

    def __init__(
        self,
        message: str,
        *,
        registry: str = "",
        repository: str | None = None,
        action: str = "",
        http_status: int | None = None,
        codes: tuple[str, ...] = (),
        host: str = "",
        named_in: str = "",
    ) -> None:
        self.host = host
        self.named_in = named_in
        super().__init__(
            message,
            registry=registry,
            repository=repository,
            action=action,
            http_status=http_status,
            codes=codes,
        )

    @classmethod
    def named(
        cls,
        host: str,
        named_in: str,
        *,
        registry: str,
        repository: str | None,
        action: str,
    ) -> UnknownRegistryHost:
        """``registry host HOST does not resolve (no such host): check the registry host in
        NAMED_IN``, with its facts."""
        return cls(
            f"registry host {host} does not resolve (no such host): check the registry host "
            f"in {named_in}",
            registry=registry,
            repository=repository,
            action=action,
            host=host,
            named_in=named_in,
        )


class RegistryUnavailable(RegistryProblem, InfrastructureError):
    """The registry could not be reached, or kept failing after retries (→ errored).

    ``unresolved_host`` is set when DNS said the host does not exist (not a temporary DNS
    failure): the pusher turns that into ``UnknownRegistryHost`` when the step itself named
    the host."""

    def __init__(
        self,
        message: str,
        *,
        registry: str = "",
        repository: str | None = None,
        action: str = "",
        http_status: int | None = None,
        codes: tuple[str, ...] = (),
        unresolved_host: str | None = None,
    ) -> None:
        self.unresolved_host = unresolved_host
        super().__init__(
            message,
            registry=registry,
            repository=repository,
            action=action,
            http_status=http_status,
            codes=codes,
        )


class StoreUnavailable(InfrastructureError):
    """The store could not be read or written (disk full, I/O error, database locked for
    too long, a PostgreSQL server down or unreachable).

    ``reason`` is the database's own one-line message (SQLite's ``database or disk is full``,
    or PostgreSQL's, with the URL's password never in it). Nothing of a failed transaction
    was kept, so the caller may retry it later as a whole: the intake answers 503 so the
    delivery is redelivered, not lost.
    """

    retry_after = 60
    """Seconds a client is told to wait (``Retry-After``) before it tries again."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"the store is unavailable: {reason}")
