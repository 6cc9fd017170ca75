"""Real git repositories for tests: a bare "remote" served over ``file://`` and commits made
with the git CLI, so checkout code runs against the real protocol."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Test",
    "GIT_AUTHOR_EMAIL": "test@example.com",
    "GIT_COMMITTER_NAME": "Test",
    "GIT_COMMITTER_EMAIL": "test@example.com",
    "GIT_AUTHOR_DATE": "2026-01-02T03:04:05Z",
    "GIT_COMMITTER_DATE": "2026-01-02T03:04:05Z",
    "PATH": "/usr/bin:/bin:/usr/local/bin",
    "HOME": "/tmp",
}


def git(cwd: Path, *args: str) -> str:
    out = subprocess.run(
        ["git", *args], cwd=cwd, env=GIT_ENV, check=True, capture_output=True, text=True
    )
    return out.stdout.strip()


@dataclass
class Remote:
    """A bare repository plus a work tree that pushes to it."""

    bare: Path
    work: Path

    @property
    def url(self) -> str:
        return f"file://{self.bare}"

    def commit(self, files: dict[str, str], branch: str = "main", message: str = "change") -> str:
        """Writes ``files`` on ``branch``, commits, pushes, and returns the sha."""
        existing = git(self.work, "branch", "--list", branch)
        if existing:
            git(self.work, "checkout", "-q", branch)
        else:
            git(self.work, "checkout", "-q", "-B", branch)
        for name, text in files.items():
            path = self.work / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            if name.endswith(".sh"):
                path.chmod(0o755)
        git(self.work, "add", "-A")
        git(self.work, "commit", "-q", "--allow-empty", "-m", message)
        git(self.work, "push", "-q", "origin", f"HEAD:refs/heads/{branch}")
        return git(self.work, "rev-parse", "HEAD")


def make_remote(root: Path) -> Remote:
    bare = root / "remote.git"
    work = root / "work"
    bare.mkdir(parents=True)
    git(bare, "init", "-q", "--bare")
    work.mkdir()
    git(work, "init", "-q")
    git(work, "remote", "add", "origin", str(bare))
    return Remote(bare, work)
