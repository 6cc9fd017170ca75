"""The ``WERCKER_*`` environment steps see (behaviour §6, wercker-spec §5)."""

from __future__ import annotations

import posixpath
import uuid
from urllib.parse import urlsplit

from bot.runners.base import GuestPaths
from steps.base import BuildFacts

# Variables a shell sets by itself: never "synced" from one step to the next. ``PATH`` is
# synced: Wercker ran every step in one shell, so a step that puts a tool on PATH (a
# virtualenv's bin, a Go workspace's bin) hands it to the steps after it.
SHELL_OWN = frozenset(
    {"PWD", "OLDPWD", "SHLVL", "_", "HOME", "TERM", "HOSTNAME", "LANG", "LC_ALL", "TZ"}
)


def pipeline_env(
    facts: BuildFacts,
    pipeline: str,
    paths: GuestPaths,
    *,
    source_dir: str | None,
    deploy: bool,
    deploy_target: str | None,
) -> dict[str, str]:
    """The pipeline-wide environment. ``deploy`` pipelines (any after the first of a build,
    and one named ``deploy``, as ``wercker deploy`` ran it) get ``DEPLOY``; the others get
    ``CI``/``BUILD``, as Wercker's build → deploy chain did."""
    owner, _, name = facts.repo.partition("/")
    source = paths.source
    if source_dir:
        source = posixpath.normpath(posixpath.join(source, source_dir))
    env = {
        "WERCKER": "true",
        "WERCKER_ROOT": paths.root,
        "WERCKER_SOURCE_DIR": source,
        "WERCKER_CACHE_DIR": paths.cache,
        "WERCKER_OUTPUT_DIR": paths.output,
        "WERCKER_PIPELINE_DIR": paths.pipeline,
        "WERCKER_REPORT_DIR": posixpath.join(paths.pipeline, "report"),
        "WERCKER_APPLICATION_NAME": name,
        "WERCKER_APPLICATION_OWNER_NAME": owner,
        # GitHub Enterprise serves repositories from its own host.
        "WERCKER_GIT_DOMAIN": urlsplit(facts.source_url).hostname or "github.com",
        "WERCKER_GIT_OWNER": owner,
        "WERCKER_GIT_REPOSITORY": name,
        "WERCKER_GIT_BRANCH": facts.branch,
        "WERCKER_GIT_TAG": facts.git_tag,
        "WERCKER_GIT_COMMIT": facts.commit,
        "WERCKER_RUN_ID": facts.run_id,
        "WERCKER_RUN_URL": facts.run_url,
        "WERCKER_PIPELINE_NAME": pipeline,
        "TERM": "xterm-256color",
    }
    if not deploy:
        env.update(
            CI="true", BUILD="true", WERCKER_BUILD_ID=facts.run_id, WERCKER_BUILD_URL=facts.run_url
        )
    else:
        env.update(DEPLOY="true", WERCKER_DEPLOY_ID=facts.run_id, WERCKER_DEPLOY_URL=facts.run_url)
    if deploy_target:
        env["WERCKER_DEPLOYTARGET_NAME"] = deploy_target
    return env


def step_env(paths: GuestPaths, step_id: str, display_name: str) -> dict[str, str]:
    owner, _, name = step_id.rpartition("/")
    name = name.split("@")[0]
    safe = f"{name}-{uuid.uuid4()}"
    return {
        "WERCKER_STEP_ROOT": posixpath.join(paths.pipeline, safe),
        "WERCKER_STEP_ID": safe,
        "WERCKER_STEP_NAME": name,
        "WERCKER_STEP_OWNER": owner or "wercker",
        "WERCKER_STEP_DISPLAY_NAME": display_name,
    }
