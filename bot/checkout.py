"""Checkout of the pushed commit with GitPython: the configured clone URL, the exact sha,
shallow where the server allows it. Credentials travel in the process environment only, so
they never reach ``.git/config``, a log line or an error shown to the user."""

from __future__ import annotations

import base64
import time
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

import git

from bot.errors import CheckoutError
from bot.logs import Log
from bot.masking import Masker


class _Progress(git.RemoteProgress):
    """Forwards git's progress to the build log, at most every 2 s."""

    def __init__(self, log: Log) -> None:
        super().__init__()
        self.log = log
        self._last = 0.0

    def update(
        self, op_code: int, cur_count: object, max_count: object = None, message: str = ""
    ) -> None:
        now = time.monotonic()
        if now - self._last < 2.0 and not op_code & self.END:
            return
        self._last = now
        line = self._cur_line.strip() if self._cur_line else ""
        if line:
            self.log.progress(f"git: {line}")


def split_credentials(clone_url: str) -> tuple[str, str, str]:
    """(URL without user:password, user, password): credentials written into a configured
    clone URL travel as a header, never in ``.git/config`` or a log line."""
    parts = urlsplit(clone_url)
    if not parts.username and not parts.password:
        return clone_url, "", ""
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return (
        urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment)),
        unquote(parts.username or ""),
        unquote(parts.password or ""),
    )


def auth_env(clone_url: str, token: str, ssh_key_file: str | None) -> dict[str, str]:
    """Environment that makes git authenticate, without writing any config file."""
    # A stalled server must not hold the branch forever: under 1 kB/s for a minute aborts.
    env: dict[str, str] = {
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_HTTP_LOW_SPEED_LIMIT": "1000",
        "GIT_HTTP_LOW_SPEED_TIME": "60",
    }
    url, user, password = split_credentials(clone_url)
    parts = urlsplit(url)
    if user and parts.scheme in ("https", "http"):
        basic = base64.b64encode(f"{user}:{password}".encode()).decode()
        env.update(
            GIT_CONFIG_COUNT="1",
            GIT_CONFIG_KEY_0=f"http.{parts.scheme}://{parts.netloc}/.extraheader",
            GIT_CONFIG_VALUE_0=f"AUTHORIZATION: basic {basic}",
        )
    elif token and parts.scheme == "https":
        basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
        env.update(
            GIT_CONFIG_COUNT="1",
            GIT_CONFIG_KEY_0=f"http.https://{parts.hostname}/.extraheader",
            GIT_CONFIG_VALUE_0=f"AUTHORIZATION: basic {basic}",
        )
    if ssh_key_file:
        env["GIT_SSH_COMMAND"] = (
            f"ssh -i {ssh_key_file} -o IdentitiesOnly=yes -o StrictHostKeyChecking=accept-new"
        )
    return env


def checkout(
    clone_url: str,
    sha: str,
    ref: str,
    dest: Path,
    log: Log,
    *,
    token: str = "",
    ssh_key_file: str | None = None,
) -> str:
    """Checks ``sha`` out into ``dest`` (created) and returns the commit time (RFC 3339).

    Tries a shallow fetch of the sha, then of the ref, then a full fetch. Submodules are
    fetched with the same credentials. Raises ``CheckoutError`` with a masked message.
    """
    masker = Masker(
        [token, base64.b64encode(f"x-access-token:{token}".encode()).decode()] if token else []
    )
    env = auth_env(clone_url, token, ssh_key_file)
    clone_url, _, url_password = split_credentials(clone_url)
    masker.add([url_password])
    dest.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    log.info(f"cloning {clone_url} at {sha[:12]}")
    try:
        repo = git.Repo.init(dest)
        with repo.git.custom_environment(**env):
            origin = repo.create_remote("origin", clone_url)
            progress = _Progress(log)
            attempts: list[tuple[str, dict[str, int]]] = [
                (sha, {"depth": 1}),
                (ref, {"depth": 50}),
                (ref, {}),
            ]
            last_error: Exception | None = None
            for refspec, kwargs in attempts:
                try:
                    origin.fetch(refspec, progress=progress, **kwargs)  # type: ignore[arg-type]
                    repo.git.cat_file("-e", f"{sha}^{{commit}}")
                    break
                except git.GitCommandError as err:
                    last_error = err
            else:
                raise CheckoutError(
                    f"could not fetch {sha[:12]} from {clone_url}: "
                    f"{_git_reason(last_error, masker)}"
                )
            repo.git.checkout("--detach", "--force", sha)
            if (dest / ".gitmodules").exists():
                log.info("fetching submodules")
                repo.git.submodule("update", "--init", "--recursive", "--depth", "1")
            created = repo.git.log("-1", "--format=%cI", sha)
    except CheckoutError:
        raise
    except git.GitCommandError as err:
        raise CheckoutError(f"git failed: {_git_reason(err, masker)}") from None
    except (OSError, ValueError) as err:
        raise CheckoutError(f"checkout failed: {masker.mask(str(err))}") from None
    log.info(f"checked out {sha[:12]} in {time.monotonic() - started:.1f}s")
    return str(created)


def is_ancestor(
    dest: Path,
    older: str,
    newer: str,
    log: Log,
    *,
    token: str = "",
    clone_url: str = "",
    ssh_key_file: str | None = None,
    depth: int = 200,
) -> bool:
    """Whether ``older`` is a strict ancestor of ``newer``, looking back at most ``depth``
    commits from ``newer`` (fetched into the checkout at ``dest``). Unknown (fetch failed,
    history deeper than ``depth``) counts as no: the build then runs, as it would have."""
    if older == newer:
        return False
    env = auth_env(clone_url, token, ssh_key_file) if clone_url else {}
    try:
        repo = git.Repo(dest)
        with repo.git.custom_environment(**env):
            repo.git.fetch("--depth", str(depth), "origin", newer)
            repo.git.fetch("--deepen", str(depth), "origin", older)
            repo.git.merge_base("--is-ancestor", older, newer)
        return True
    except git.GitCommandError:
        return False
    except (OSError, ValueError) as err:
        log.warn(f"could not compare {older[:7]} with {newer[:7]}: {type(err).__name__}")
        return False


def _git_reason(err: Exception | None, masker: Masker) -> str:
    if isinstance(err, git.GitCommandError):
        text = (err.stderr or "").strip().replace("stderr: ", "").strip("'\n ")
        lines = [ln for ln in text.splitlines() if ln.strip()]
        return masker.mask(lines[-1] if lines else f"exit {err.status}")
    return masker.mask(str(err)) if err else "unknown error"


def local_commit_facts(directory: Path) -> tuple[str, str, str]:
    """(branch, commit, commit time) of a local checkout, for ``wercker-bot run``; empty
    strings when ``directory`` is not a git work tree."""
    try:
        repo = git.Repo(directory, search_parent_directories=False)
        commit = repo.head.commit.hexsha
        branch = "" if repo.head.is_detached else repo.active_branch.name
        return branch, commit, repo.head.commit.committed_datetime.isoformat()
    except (git.InvalidGitRepositoryError, git.NoSuchPathError, ValueError, TypeError):
        return "", "", ""
