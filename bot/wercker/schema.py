"""What wercker.yml may contain: known keys and options, taken from reference/wercker-spec.md.

Plain tables only; ``parse`` and ``lint`` read them. Keeping them apart means a new option is a
one-line change that both the parser and the linter see.
"""

from __future__ import annotations

# Top-level keys that are not pipelines (spec §1.2).
TOP_LEVEL_KEYS = frozenset(
    {
        "box",
        "services",
        "command-timeout",
        "no-response-timeout",
        "source-dir",
        "ignore-file",
        "workflows",
    }
)
# Keys of a pipeline mapping (spec §1.3); any other key must be a deploy-target step list.
PIPELINE_KEYS = frozenset({"box", "services", "steps", "after-steps", "base-path", "docker"})
# Keys that only mean something at the top level; found inside a pipeline they are lint.
TOP_ONLY_KEYS = TOP_LEVEL_KEYS - PIPELINE_KEYS

TIMEOUT_CAP_MINUTES = 60
DEFAULT_COMMAND_TIMEOUT_MINUTES = 25
DEFAULT_NO_RESPONSE_TIMEOUT_MINUTES = 5

AWS_KEYS = ("aws-access-key", "aws-secret-key", "aws-region", "aws-registry-id")
AZURE_KEYS = (
    "azure-client-id",
    "azure-client-secret",
    "azure-subscription-id",
    "azure-tenant-id",
    "azure-resource-group",
    "azure-registry-name",
    "azure-login-server",
)
_REGISTRY_AUTH = frozenset(
    {"username", "password", "registry", *AWS_KEYS, "aws-strict-auth", *AZURE_KEYS}
)

PUSH_OPTIONS = frozenset(
    {
        "repository",
        "tag",
        "email",
        "auth-server",
        "cmd",
        "entrypoint",
        "env",
        "labels",
        "ports",
        "volumes",
        "working-dir",
        "user",
        "stopsignal",
        "author",
        "message",
        "image-name",
        "disable-sync",
        *_REGISTRY_AUTH,
    }
)
BUILD_OPTIONS = frozenset(
    {
        "image-name",
        "dockerfile",
        "context",
        "build-args",
        "labels",
        "extra-hosts",
        "no-cache",
        "q",
        "squash",
        "registry-auth-config",
        "disable-sync",
    }
)
RUN_OPTIONS = frozenset(
    {
        "image",
        "name",
        "cmd",
        "entrypoint",
        "env",
        "working-dir",
        "user",
        "ports",
        "username",
        "password",
        "registry",
        "disable-sync",
    }
)
SCRIPT_OPTIONS = frozenset({"code"})

PUSH_STEPS = frozenset({"internal/docker-push", "internal/docker-scratch-push"})
DOCKER_BUILD = "internal/docker-build"

# Options per step id; a step id missing here has no table (registry steps: unknowable).
STEP_OPTIONS: dict[str, frozenset[str]] = {
    "script": SCRIPT_OPTIONS,
    "internal/docker-push": PUSH_OPTIONS,
    "internal/docker-scratch-push": PUSH_OPTIONS,
    DOCKER_BUILD: BUILD_OPTIONS,
    "internal/docker-run": RUN_OPTIONS,
    "internal/docker-kill": frozenset({"name"}),
    "internal/store-container": frozenset(),
    "internal/publish-step": frozenset({"owner", "endpoint", "auth-token", "path", "private"}),
    "internal/watch": frozenset({"code", "reload"}),
    "internal/shell": frozenset({"code", "cmd"}),
}

# Wercker's dev-mode steps: the CLI skipped them outside ``wercker dev`` (spec §1.6), and so
# does the bot, with a warning (``stepnodes.StepReader.kept``).
DEV_STEPS = frozenset({"internal/watch", "internal/shell"})
# Internal steps this bot runs; DOCKER_BUILD, docker-run and docker-kill additionally need
# the docker runner.
RUNNABLE_STEPS = frozenset(
    {"script", *PUSH_STEPS, DOCKER_BUILD, "internal/docker-run", "internal/docker-kill"}
)
# For docker-run/kill ``name`` is the container name (an option), not a display name.
NAME_IS_OPTION = frozenset({"internal/docker-run", "internal/docker-kill"})

# Box keys the bot uses: the image and how to pull it (bot.pushers.target.resolve_box), and env.
BOX_USED_KEYS = frozenset({"id", "tag", "env", *_REGISTRY_AUTH})
# Box keys Wercker knew that the bot ignores, each with what to do instead (lint warns).
BOX_IGNORED_KEYS: dict[str, str] = {
    "cmd": "wercker-bot starts the box with its own shell; run commands in a script step",
    "entrypoint": "wercker-bot starts the box with its own shell; run commands in a script step",
    "ports": "no ports are published (Wercker only used them with --expose-ports)",
    "volumes": "no host directories are mounted (Wercker only used them with --enable-volumes)",
    "url": "external services built from another project are not supported",
}
# Keys only a service may have; in a box they are unknown.
SERVICE_ONLY_KEYS: dict[str, str] = {
    "name": "the name a service is reached by (link variables, host name)",
}
BOX_KEYS = BOX_USED_KEYS | frozenset(BOX_IGNORED_KEYS)
SERVICE_KEYS = BOX_KEYS | frozenset(SERVICE_ONLY_KEYS)

# Misspellings Wercker silently ignored, read as what was meant (behaviour §6), per step id.
ALIASES: dict[str, dict[str, str]] = {
    "internal/docker-push": {"port": "ports", "tags": "tag", "image": "image-name"},
    "internal/docker-scratch-push": {"port": "ports", "tags": "tag", "image": "image-name"},
    "internal/docker-run": {"port": "ports"},
    "box": {"port": "ports"},
}

# Options that are booleans: ``yes``/``on``/``True`` become ``"true"`` here only; elsewhere the
# text is kept as written (``tag: yes`` pushes the tag ``yes``).
BOOL_OPTIONS = frozenset({"disable-sync", "no-cache", "q", "squash", "aws-strict-auth", "docker"})

# Options whose value is shell words (shlex); a YAML list is joined with ``shlex.join`` so that
# splitting it again gives the same words, and a mapping becomes ``K=V`` words.
WORD_OPTIONS = frozenset({"cmd", "entrypoint", "env", "labels", "build-args", "extra-hosts"})
# Of those, the ones whose every word must be ``K=V``.
KV_OPTIONS = frozenset({"env", "labels", "build-args"})

# $VAR in these must be defined: an empty credential or repository silently pushes elsewhere.
STRICT_OPTIONS = frozenset({"repository", "registry", "username", "password"})
STRICT_PREFIXES = ("aws-", "azure-")
# Wercker never expanded these; they are shlex-split later as written.
UNEXPANDED_OPTIONS = frozenset({"cmd", "entrypoint"})


def is_strict(option: str) -> bool:
    """True when an undefined ``$VAR`` in ``option`` must fail the step."""
    return option in STRICT_OPTIONS or option.startswith(STRICT_PREFIXES)
