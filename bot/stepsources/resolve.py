"""``StepSources``: a wercker.yml step id → the ``StepPackage`` that runs it, at plan time.

Order: a configured ``[steps]`` source (one with a version range that holds the asked
version wins over one without), else the built-in library (``steps/library/<name>`` for
``wercker/<name>``). A configured source therefore overrides a built-in step of the same id.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from bot.checkout import split_credentials
from bot.stepsources import (
    LIBRARY,
    SERVES_ANY_OWNER,
    StepId,
    StepPackage,
    built_in_dir,
    parse_step_id,
)
from bot.stepsources.config import StepSource
from bot.stepsources.gitcache import GitCache, SourceError
from bot.stepsources.manifest import PackageError, inspect_package
from bot.stepsources.versions import satisfies

if TYPE_CHECKING:
    from bot.logs import Log
    from bot.settings import Settings

class Unresolved(Exception):
    """The id resolves to nothing usable. ``str()`` says why; ``hint`` what to do."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.hint = hint


def config_hint(step: StepId) -> str:
    """The config line that would make ``step`` resolve."""
    return (
        f'set [steps] "{step.key}" = {{ git = "<url>", ref = "<branch|tag|sha>" }} '
        "in the bot's config"
    )


class StepSources:
    """Resolves step ids. ``cache`` fetches git sources (``None``: git sources cannot be
    used, e.g. ``wercker-bot check``); ``library`` is the built-in library directory."""

    def __init__(
        self,
        sources: Sequence[StepSource] = (),
        cache: GitCache | None = None,
        library: Path = LIBRARY,
    ) -> None:
        self.sources = tuple(sources)
        self.cache = cache
        self.library = library

    @classmethod
    def from_settings(cls, settings: Settings, token: str) -> StepSources:
        """The configured sources, with their git cache under ``data_dir``; ``token`` is
        the forge's clone token (``Forge.clone_token``)."""
        cache = GitCache(settings.data_dir / "step-sources", token=token)
        return cls(settings.steps, cache)

    def resolve(self, text: str, log: Log) -> StepPackage:
        """The package for the wercker.yml step id ``text``; logs where it came from.
        Raises ``Unresolved``."""
        step = parse_step_id(text)
        if step is None:
            raise Unresolved(
                f"'{text}' is not a step id", "write it as owner/name or owner/name@version"
            )
        source = self._configured(step)
        package = self._from_source(step, source) if source else self._built_in(step)
        log.info(f"step {text}: {package.describe()}")
        for warning in _warnings(package, step):
            log.warn(f"step {text}: {warning}")
        return package

    def _configured(self, step: StepId) -> StepSource | None:
        matching = [
            s for s in self.sources if s.id == step.key and satisfies(step.version, s.versions)
        ]
        ranged = [s for s in matching if s.versions != "*"]
        best = ranged or matching
        return best[0] if best else None

    def _from_source(self, step: StepId, source: StepSource) -> StepPackage:
        where = f'[steps] "{source.key}"'
        if source.path is not None:
            # The operator's own directory: links in its path are the operator's choice.
            directory = source.path.resolve()
            return _package(step, directory, f"path {directory}", None, where)
        assert source.git is not None
        if self.cache is None:
            raise Unresolved(
                f"step '{step}' comes from git, which is not fetched here", "run it through the bot"
            )
        try:
            commit, directory = self.cache.pin(source.git, source.ref, source.ssh_key_file)
        except SourceError as err:
            raise Unresolved(
                f"{where}: cannot fetch {step.key} from git: {err}",
                "check the URL, the ref and the credentials",
            ) from None
        url, _, _ = split_credentials(source.git)
        return _package(step, directory, f"git {url} {source.ref}", commit, where)

    def _built_in(self, step: StepId) -> StepPackage:
        alias = SERVES_ANY_OWNER.get(step.name)
        directory = built_in_dir(step, self.library)
        if directory is None:
            raise Unresolved(
                f"step '{step}' is not a step type of wercker-bot, a configured step source "
                f"nor a built-in step; {config_hint(step)}",
                "or replace it with a 'script' step that runs the same commands",
            )
        origin = "the built-in library" if alias is None else f"the built-in library ({alias})"
        return _package(step, directory, origin, None, "the built-in library")


def _package(
    step: StepId, directory: Path, origin: str, commit: str | None, where: str
) -> StepPackage:
    try:
        info = inspect_package(directory)
    except PackageError as err:
        raise Unresolved(
            f"{where}: {step.key} is not a usable step package: {err}",
            "a step package holds run.sh and step.yml (or wercker-step.yml) as regular files",
        ) from None
    return StepPackage(
        id=step,
        directory=directory,
        origin=origin,
        commit=commit,
        version=info.version,
        properties=info.properties,
        manifest=info.manifest,
        warnings=tuple(info.warnings),
    )


def _warnings(package: StepPackage, step: StepId) -> list[str]:
    out = list(package.warnings)
    if step.version != "*" and package.version and not satisfies(package.version, step.version):
        out.append(f"asked for version {step.version}; the package says {package.version}")
    return out
