"""Where a build stands among its branch's builds, by git ancestry, once its commit is checked
out (intake could only use what payloads prove; behaviour §3)."""

from __future__ import annotations

from pathlib import Path

from bot.checkout import ancestry, is_ancestor
from bot.logs import Log
from bot.settings import RepoSettings
from bot.store.base import QueueStore
from bot.store.rows import BuildRow, QueuedBuild


def superseded_by(
    store: QueueStore,
    build: BuildRow,
    repo: RepoSettings,
    source: Path,
    log: Log,
    *,
    token: str,
) -> str | None:
    """The sha of a descendant that makes ``build`` moot: one already built for its branch,
    or one queued behind it (a user's redelivery does not count). ``None`` when the build
    should run; the queued builds whose commits are its ancestors are then canceled now
    ("Superseded by <this sha>", statuses resolved), so they never push over it. Unrelated
    histories (a force push) and whatever git cannot tell keep arrival order. The caller
    never asks for a user's redelivery (an explicit re-run: the rollback path), which is
    never superseded and supersedes nothing. ``source`` is the checkout of ``build``."""
    if not build.branch:
        return None
    newest = store.newest_built_sha(build.repo, build.branch, build.id)
    if (
        newest is not None
        and newest != build.sha
        and is_ancestor(
            source, build.sha, newest, log,
            token=token, clone_url=repo.clone_url, ssh_key_file=repo.ssh_key_file,
        )
    ):  # fmt: skip
        log.info(
            f"{build.sha[:12]} is older than {newest[:12]}, already built for this "
            "branch; not pushing over it (redeliver this push to roll back on purpose)"
        )
        return newest
    queued = [
        q for q in store.queued_on_branch(build.repo, build.branch, build.id) if not q.explicit
    ]
    if not queued:
        return None
    return _against_queue(store, build, repo, source, log, queued, token)


def _against_queue(
    store: QueueStore,
    build: BuildRow,
    repo: RepoSettings,
    source: Path,
    log: Log,
    queued: list[QueuedBuild],
    token: str,
) -> str | None:
    """The newest queued descendant of ``build``, if any; else cancels its queued ancestors."""
    sha = build.sha
    related = ancestry(
        source, sha, [q.sha for q in queued], log,
        token=token, clone_url=repo.clone_url, ssh_key_file=repo.ssh_key_file,
    )  # fmt: skip
    if related.descendants:
        newer = related.descendants[-1]  # several: the latest to arrive
        log.info(
            f"{sha[:12]} is an ancestor of {newer[:12]}, queued for this branch; that "
            "build runs instead (redeliver this push to roll back on purpose)"
        )
        return newer
    older = [q for q in queued if q.sha in related.ancestors]
    canceled = set(store.supersede(build.repo, older, sha)) if older else set()
    if canceled:
        log.info(
            "canceled the queued builds of older commits of this branch: "
            + ", ".join(f"#{q.build_id} ({q.sha[:12]})" for q in older if q.attempt_id in canceled)
        )
    return None
