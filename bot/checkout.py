"""Checkout of the pushed commit with GitPython: the configured clone URL, the exact sha,
shallow where the server allows it. Credentials travel in the process environment only, so
they never reach ``.git/config``, a log line or an error shown to the user."""

from __future__ import annotations

import base64
import contextlib
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

import git

from bot.errors import CheckoutError
from bot.logs import Log
from bot.masking import Masker

_FULL_SHA = re.compile(r"^[0-9a-f]{40}$")


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
    # The authority after the credentials, as written: keeps the port and an IPv6 host's
    # brackets (``hostname`` drops both).
    netloc = parts.netloc.rsplit("@", 1)[1]
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
        # Keyed on host *and* port: git matches ``http.<url>.*`` against the whole
        # authority, so a bare host name never matches GitHub Enterprise on :8443.
        env.update(
            GIT_CONFIG_COUNT="1",
            GIT_CONFIG_KEY_0=f"http.https://{parts.netloc}/.extraheader",
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


@dataclass(frozen=True)
class Ancestry:
    """How a commit relates to others, as far as a bounded look back could tell."""

    descendants: tuple[str, ...]
    """The others that ``sha`` is a strict ancestor of."""
    ancestors: tuple[str, ...]
    """The others that are strict ancestors of ``sha``."""


def ancestry(
    dest: Path,
    sha: str,
    others: Sequence[str],
    log: Log,
    *,
    token: str = "",
    clone_url: str = "",
    ssh_key_file: str | None = None,
    depth: int = 200,
) -> Ancestry:
    """Which of ``others`` descend from ``sha`` and which are its ancestors, looking back at
    most ``depth`` commits from each (fetched into the checkout at ``dest`` in one fetch
    when the server allows, else one by one). A commit that cannot be fetched, an unrelated
    history (a force push) and history deeper than ``depth`` count as neither: the builds
    then keep their arrival order. Never raises."""
    wanted = [o for o in dict.fromkeys(others) if o != sha and _FULL_SHA.match(o)]
    if not wanted or not _FULL_SHA.match(sha):
        return Ancestry((), ())
    env = auth_env(clone_url, token, ssh_key_file) if clone_url else {}
    try:
        repo = git.Repo(dest)
        with repo.git.custom_environment(**env):
            try:
                repo.git.fetch("--depth", str(depth), "origin", sha, *wanted)
            except git.GitCommandError:
                # One commit the server no longer has fails the whole fetch.
                for one in (sha, *wanted):
                    with contextlib.suppress(git.GitCommandError):
                        repo.git.fetch("--depth", str(depth), "origin", one)
            descendants = tuple(o for o in wanted if _is_ancestor(repo, sha, o))
            ancestors = tuple(
                o for o in wanted if o not in descendants and _is_ancestor(repo, o, sha)
            )
    except (OSError, ValueError, git.GitError) as err:
        log.warn(f"could not compare {sha[:7]} with the queued commits: {type(err).__name__}")
        return Ancestry((), ())
    return Ancestry(descendants, ancestors)


def _is_ancestor(repo: git.Repo, older: str, newer: str) -> bool:
    try:
        repo.git.merge_base("--is-ancestor", older, newer)
    except git.GitCommandError:
        return False  # exit 1 (not an ancestor) or a commit missing from the shallow history
    return True


_REF_SPECIALS = " ~^:?*[\\"


def check_ref_format(ref: str) -> str | None:
    """Why ``ref`` (a full ref such as ``refs/heads/main``) breaks git's ref-name rules
    (``git check-ref-format``), as a short phrase; ``None`` when it is valid. A ref reaches
    cache paths, tags and the log, so a newline, ``..`` or a ``//`` must never get in."""
    if not ref:
        return "it is empty"
    control = next((c for c in ref if ord(c) < 0x20 or c == "\x7f"), None)
    if control is not None:
        return f"it contains the control character {control!r}"
    special = next((c for c in ref if c in _REF_SPECIALS), None)
    if special is not None:
        return f"it contains {special!r}"
    for bad in ("..", "@{", "//"):
        if bad in ref:
            return f"it contains {bad!r}"
    if ref == "@":
        return "it is '@'"
    if ref.startswith("/") or ref.endswith("/"):
        return "it starts or ends with '/'"
    if ref.endswith("."):
        return "it ends with '.'"
    for part in ref.split("/"):
        if part.startswith("."):
            return f"its part {part!r} starts with '.'"
        if part.endswith(".lock"):
            return f"its part {part!r} ends with '.lock'"
    return None


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
