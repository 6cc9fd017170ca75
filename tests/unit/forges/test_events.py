"""``bot.forges.events``: what a delivery turns into. A push is identified by its hook and
delivery ids, and the ordering evidence it carries is not part of its identity."""

from __future__ import annotations

import dataclasses

from bot.forges.events import PushEvent

PUSH = PushEvent(
    delivery_id="d-1",
    hook_id="h-1",
    repo_full_name="acme/app",
    ref="refs/heads/main",
    branch="main",
    tag="",
    sha="b" * 40,
    before="a" * 40,
    head_message="fix",
    pusher="octocat",
    html_url="https://github.com/acme/app",
    private=False,
    commits=("b" * 40,),
)


def test_dedupe_key_is_hook_then_delivery() -> None:
    assert PUSH.dedupe_key == ("h-1", "d-1")
    other_hook = dataclasses.replace(PUSH, hook_id="h-2")
    assert other_hook.dedupe_key != PUSH.dedupe_key  # one delivery id may span hooks


def test_commits_and_forced_do_not_change_what_the_push_is() -> None:
    evidence = dataclasses.replace(PUSH, commits=("c" * 40, "b" * 40), forced=True)
    assert evidence == PUSH and hash(evidence) == hash(PUSH)
    assert dataclasses.replace(PUSH, sha="c" * 40) != PUSH
