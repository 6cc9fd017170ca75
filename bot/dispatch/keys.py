"""The dispatch key of a build: ``"<repo>@<branch>"``, or ``"<repo>@<tag>"`` for a tag push.

One key is one line of work: at most one build of a key runs at a time, and the newest
queued build of a key supersedes the older ones (``bot.store.drain``). The key is also
procrastinate's ``lock`` and ``queueing_lock`` for the ``drain`` job of that line.

A repository name (``owner/name``) never holds ``@``; a branch name may, so a key is split
at its first ``@``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Key:
    """A parsed key: the repository and the branch or tag name it serialises."""

    repo: str
    name: str

    def __str__(self) -> str:
        return f"{self.repo}@{self.name}"


def key_for(repo: str, branch: str, git_tag: str) -> str:
    """The key of a build of ``repo`` on ``branch`` (a tag push has no branch: its tag)."""
    return str(Key(repo, branch or git_tag))


def parse_key(key: str) -> Key:
    """Splits a key made by ``key_for``; raises ``ValueError`` for anything else."""
    repo, sep, name = key.partition("@")
    if not sep or not repo or not name:
        raise ValueError(f"not a dispatch key (repo@branch): {key!r}")
    return Key(repo, name)
