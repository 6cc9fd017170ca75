"""The bot's configuration: TOML, with ``${NAME}`` in any string read from the environment.

``load_settings`` is the only reader; nothing reads config at import time and there is no
global settings object. The composition root passes ``Settings`` to what needs it.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.errors import ConfigError
from bot.settings_store import LogArchiveSettings, StoreSettings, parse_logs, parse_store
from bot.settings_toml import (
    check_keys,
    expand,
    flag,
    megabytes,
    str_map,
    subtable,
)
from bot.stepsources.config import StepSource, parse_steps

DEFAULT_LOG_LIMIT_MB = 100
DEFAULT_SHUTDOWN_GRACE = 25.0
RUNNER_KINDS = ("auto", "local", "docker", "local-unsafe")
DEFAULT_PIPELINES: tuple[dict[str, Any], ...] = ({"name": "build"}, {"name": "deploy"})


@dataclass(frozen=True)
class PipelineChoice:
    """One entry of a repository's ordered pipeline list; ``branches`` are fnmatch globs
    (empty: every branch)."""

    name: str
    branches: tuple[str, ...] = ()


@dataclass(frozen=True)
class RepoSettings:
    full_name: str
    clone_url: str
    pipelines: tuple[PipelineChoice, ...]
    env: Mapping[str, str]
    secrets: Mapping[str, str]
    deploy_target: str | None = None
    ssh_key_file: str | None = None


@dataclass(frozen=True)
class RegistrySettings:
    """``[registries."host"]``: how to reach one registry host.

    ``insecure``: plain HTTP or no TLS verification, explicitly. ``mirror_of``: this entry's
    host serves the images named with that other host (e.g. an ECR host mapped onto a local
    registry). ``username``/``password`` are defaults when a wercker.yml names none.
    ``aws_endpoint_url`` points boto3's ECR client elsewhere (moto, a VPC endpoint).
    ``create_repository``: create a missing ECR repository before pushing.
    """

    host: str
    ca_file: str | None = None
    insecure: bool = False
    mirror_of: str | None = None
    username: str | None = None
    password: str | None = None
    aws_endpoint_url: str | None = None
    create_repository: bool = False


@dataclass(frozen=True)
class GitHubSettings:
    api_url: str = "https://api.github.com"
    webhook_secret: str = ""
    token: str = ""
    status_context: str = "wercker-bot"
    insecure_skip_signature: bool = False


@dataclass(frozen=True)
class StepLimits:
    """What one step may use. ``memory_mb``: a box container's memory (docker runner);
    ``max_file_mb``: the largest file a step's process may write (local runner, as
    ``RLIMIT_FSIZE``; the docker runner bounds files by the engine's storage)."""

    memory_mb: int = 4096
    max_file_mb: int = 10240


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    base_url: str
    workers: int
    github: GitHubSettings
    runner_kind: str
    repos: Mapping[str, RepoSettings]
    registries: Mapping[str, RegistrySettings] = field(default_factory=dict)
    docker_host: str | None = None
    docker_network: str = "none"
    clone_url_template: str = "https://github.com/{full_name}.git"
    config_path: Path | None = None
    sandbox_expose: tuple[str, ...] = ()
    log_limit: int = DEFAULT_LOG_LIMIT_MB * 1024 * 1024
    step_limits: StepLimits = field(default_factory=lambda: StepLimits())
    steps: tuple[StepSource, ...] = ()
    """``[steps]``: where registry step ids come from (``bot.stepsources.config``)."""
    store: StoreSettings | None = None
    """``[store]`` (``bot.settings_store``); None means the embedded SQLite file in
    ``data_dir``, which ``__post_init__`` fills in, so it is never None once built."""
    logs: LogArchiveSettings = field(default_factory=lambda: LogArchiveSettings())
    shutdown_grace: float = DEFAULT_SHUTDOWN_GRACE
    """Seconds running builds get to finish after SIGTERM before they are stopped and
    queued again."""

    def __post_init__(self) -> None:
        if self.store is None:
            object.__setattr__(self, "store", parse_store({}, {}, self.data_dir))

    @property
    def database(self) -> StoreSettings:
        """``store``, typed as never None (``__post_init__`` sees to it)."""
        assert self.store is not None
        return self.store

    @property
    def db_path(self) -> Path:
        """The SQLite file of the embedded store. Raises ``ConfigError`` on PostgreSQL."""
        path = self.database.sqlite_path
        if path is None:
            raise ConfigError("the store is PostgreSQL, not a SQLite file", "store.url")
        return path

    def secret_values(self) -> list[str]:
        values = [self.github.webhook_secret, self.github.token]
        for repo in self.repos.values():
            values.extend(repo.secrets.values())
        for reg in self.registries.values():
            if reg.password:
                values.append(reg.password)
        values.extend(source.password for source in self.steps)
        values.extend(self.database.passwords)
        return [v for v in values if v]


def _pipelines(raw: Any, where: str) -> tuple[PipelineChoice, ...]:
    if raw is None:
        raw = list(DEFAULT_PIPELINES)
    if not isinstance(raw, list) or not raw:
        raise ConfigError("must be a non-empty list of names or {name=..., branches=[...]}", where)
    out: list[PipelineChoice] = []
    for i, entry in enumerate(raw):
        if isinstance(entry, str):
            out.append(PipelineChoice(entry))
        elif isinstance(entry, dict) and isinstance(entry.get("name"), str):
            branches = entry.get("branches", [])
            if not isinstance(branches, list) or not all(isinstance(b, str) for b in branches):
                raise ConfigError("branches must be a list of globs", f"{where}[{i}].branches")
            unknown = set(entry) - {"name", "branches"}
            if unknown:
                raise ConfigError(f"unknown key(s) {sorted(unknown)}", f"{where}[{i}]")
            out.append(PipelineChoice(entry["name"], tuple(branches)))
        else:
            raise ConfigError("must be a name or {name=..., branches=[...]}", f"{where}[{i}]")
    return tuple(out)


_TOP_KEYS = {
    "data_dir",
    "base_url",
    "workers",
    "github",
    "runner",
    "repos",
    "registries",
    "clone_url_template",
    "log_limit_mb",
    "steps",
    "store",
    "logs",
    "shutdown_grace_seconds",
}
_REPO_KEYS = {"clone_url", "pipelines", "env", "secrets", "deploy_target", "ssh_key_file"}
_REGISTRY_KEYS = {
    "ca_file",
    "insecure",
    "mirror_of",
    "username",
    "password",
    "aws_endpoint_url",
    "create_repository",
}


def parse_settings(
    raw: Mapping[str, Any],
    env: Mapping[str, str],
    *,
    base_dir: Path,
    config_path: Path | None = None,
) -> Settings:
    """Builds ``Settings`` from a parsed TOML document. Raises ``ConfigError`` naming the key."""
    raw = expand(dict(raw), env, "")
    check_keys(raw, _TOP_KEYS, "")
    github = _github(subtable(raw, "github", ""))
    runner_raw = subtable(raw, "runner", "")
    kind, expose, limits = _runner(runner_raw)
    log_limit_mb = raw.get("log_limit_mb", DEFAULT_LOG_LIMIT_MB)
    if isinstance(log_limit_mb, bool) or not isinstance(log_limit_mb, int) or log_limit_mb < 1:
        raise ConfigError("must be a whole number of megabytes ≥ 1", "log_limit_mb")
    workers = raw.get("workers", 2)
    if not isinstance(workers, int) or workers < 0:
        raise ConfigError("must be a whole number ≥ 0", "workers")
    template = str(raw.get("clone_url_template", "https://github.com/{full_name}.git"))
    try:
        template.format(full_name="owner/name")
    except (KeyError, IndexError, ValueError):
        raise ConfigError(
            "may only use the placeholder {full_name}", "clone_url_template"
        ) from None
    repos = _repos(subtable(raw, "repos", ""), template)
    registries = _registries(subtable(raw, "registries", ""))
    data_dir = Path(str(raw.get("data_dir", "var")))
    if not data_dir.is_absolute():
        data_dir = base_dir / data_dir
    grace = raw.get("shutdown_grace_seconds", DEFAULT_SHUTDOWN_GRACE)
    if isinstance(grace, bool) or not isinstance(grace, (int, float)) or grace < 0:
        raise ConfigError("must be a number of seconds ≥ 0", "shutdown_grace_seconds")
    return Settings(
        data_dir=data_dir,
        base_url=str(raw.get("base_url", "http://127.0.0.1:8080")).rstrip("/"),
        workers=workers,
        github=github,
        runner_kind=kind,
        repos=repos,
        registries=registries,
        docker_host=runner_raw.get("docker_host"),
        docker_network=str(runner_raw.get("network", "none")),
        clone_url_template=template,
        config_path=config_path,
        sandbox_expose=expose,
        log_limit=log_limit_mb * 1024 * 1024,
        step_limits=limits,
        steps=parse_steps(subtable(raw, "steps", ""), base_dir),
        store=parse_store(subtable(raw, "store", ""), env, data_dir),
        logs=parse_logs(subtable(raw, "logs", "")),
        shutdown_grace=float(grace),
    )


def _github(github_raw: dict[str, Any]) -> GitHubSettings:
    """The ``[github]`` table."""
    check_keys(
        github_raw,
        {"api_url", "webhook_secret", "token", "status_context", "insecure_skip_signature"},
        "github.",
    )
    return GitHubSettings(
        api_url=str(github_raw.get("api_url", GitHubSettings.api_url)).rstrip("/"),
        webhook_secret=str(github_raw.get("webhook_secret", "")),
        token=str(github_raw.get("token", "")),
        status_context=str(github_raw.get("status_context", "wercker-bot")),
        insecure_skip_signature=flag(github_raw, "insecure_skip_signature", "github."),
    )


def _runner(runner_raw: dict[str, Any]) -> tuple[str, tuple[str, ...], StepLimits]:
    """The ``[runner]`` table's kind, ``sandbox_expose`` paths and step limits (its
    ``docker_host`` and ``network`` are read as they are)."""
    check_keys(
        runner_raw,
        {"kind", "docker_host", "network", "sandbox_expose", "memory_mb", "max_file_mb"},
        "runner.",
    )
    kind = str(runner_raw.get("kind", "auto"))
    if kind not in RUNNER_KINDS:
        raise ConfigError(
            f"must be auto, local, docker or local-unsafe, not {kind!r}", "runner.kind"
        )
    expose = runner_raw.get("sandbox_expose", [])
    if not isinstance(expose, list) or not all(
        isinstance(p, str) and p.startswith("/") for p in expose
    ):
        raise ConfigError(
            "must be a list of absolute host paths (shown read-only to local steps)",
            "runner.sandbox_expose",
        )
    limits = StepLimits(
        memory_mb=megabytes(runner_raw, "memory_mb", StepLimits.memory_mb, "runner.", 64),
        max_file_mb=megabytes(runner_raw, "max_file_mb", StepLimits.max_file_mb, "runner.", 1),
    )
    return kind, tuple(expose), limits


def _repos(table: dict[str, Any], template: str) -> dict[str, RepoSettings]:
    """The ``[repos]`` tables, by lower-cased ``owner/name``."""
    repos: dict[str, RepoSettings] = {}
    for full_name, repo_raw in table.items():
        where = f"repos.{full_name!r}"
        if not isinstance(repo_raw, dict):
            raise ConfigError("must be a table", where)
        if full_name.count("/") != 1:
            raise ConfigError("the key must be owner/name", where)
        check_keys(repo_raw, _REPO_KEYS, where + ".")
        repos[full_name.lower()] = RepoSettings(
            full_name=full_name,
            clone_url=str(repo_raw.get("clone_url") or template.format(full_name=full_name)),
            pipelines=_pipelines(repo_raw.get("pipelines"), where + ".pipelines"),
            env=str_map(subtable(repo_raw, "env", where + "."), where + ".env"),
            secrets=str_map(subtable(repo_raw, "secrets", where + "."), where + ".secrets"),
            deploy_target=repo_raw.get("deploy_target"),
            ssh_key_file=repo_raw.get("ssh_key_file"),
        )
    return repos


def _registries(table: dict[str, Any]) -> dict[str, RegistrySettings]:
    """The ``[registries]`` tables, by lower-cased host."""
    registries: dict[str, RegistrySettings] = {}
    for host, reg_raw in table.items():
        where = f"registries.{host!r}"
        if not isinstance(reg_raw, dict):
            raise ConfigError("must be a table", where)
        check_keys(reg_raw, _REGISTRY_KEYS, where + ".")
        registries[host.lower()] = RegistrySettings(
            host=host.lower(),
            ca_file=reg_raw.get("ca_file"),
            insecure=flag(reg_raw, "insecure", where + "."),
            mirror_of=reg_raw.get("mirror_of"),
            username=reg_raw.get("username"),
            password=reg_raw.get("password"),
            aws_endpoint_url=reg_raw.get("aws_endpoint_url"),
            create_repository=flag(reg_raw, "create_repository", where + "."),
        )
    return registries


def load_settings(
    path: str | os.PathLike[str] | None, env: Mapping[str, str] | None = None
) -> Settings:
    """Reads the config from ``path``, else ``$WERCKER_BOT_CONFIG``, else ``config.example.toml``
    in the working directory. Relative ``data_dir`` is taken from the working directory."""
    env = os.environ if env is None else env
    chosen = path or env.get("WERCKER_BOT_CONFIG") or "config.example.toml"
    file = Path(chosen)
    try:
        raw = tomllib.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            f"config file {file} not found; pass --config or set WERCKER_BOT_CONFIG"
        ) from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{file}: invalid TOML: {err}") from None
    except (OSError, UnicodeError) as err:
        raise ConfigError(f"cannot read config file {file}: {err}") from None
    return parse_settings(raw, env, base_dir=Path.cwd(), config_path=file)
