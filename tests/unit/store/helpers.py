"""Pushes and status views shared by the store's tests."""

from __future__ import annotations

from bot.store.base import Store
from bot.store.rows import NewPush
from tests.harness.builds import new_push

URL = "http://bot/builds/{id}"
S, A, B, C = ("5" * 40, "a" * 40, "b" * 40, "c" * 40)  # the history S → A → B → C


def push(
    sha: str,
    *,
    delivery: str | None = None,
    branch: str = "main",
    before: str = "0" * 40,
    repo: str = "acme/app",
    commits: tuple[str, ...] = (),
    forced: bool = False,
) -> NewPush:
    return NewPush(
        hook_id="7",
        delivery_id=delivery or f"d-{sha}",
        repo=repo,
        ref=f"refs/heads/{branch}",
        branch=branch,
        git_tag="",
        sha=sha,
        before_sha=before,
        message="m",
        pusher="p",
        html_url="https://github.com/acme/app",
        pipelines=["build", "deploy"],
        commits=commits,
        forced=forced,
    )


def push_of(pipelines: list[str], delivery: str = "d") -> NewPush:
    return new_push(pipelines=pipelines, delivery_id=delivery)


def latest(store: Store, sha: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for row in store.statuses_for("acme/app", sha):
        out[row.context] = f"{row.state}:{row.description}"
    return out


def state_of(store: Store, intake: object) -> str | None:
    build_id = getattr(intake, "build_id", None)
    return store.attempt_state(build_id or 0, 1)
