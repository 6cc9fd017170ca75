"""Git step sources, fetched with GitPython and pinned.

Layout under the cache root (``<data_dir>/step-sources``): one directory per source URL
(a hash of it), holding ``repo`` (a bare repository the bot fetches into) and
``commits/<sha>`` (the package files of one commit, written by the bot from the git tree).
A plan uses ``commits/<sha>``, which never changes once written, so a ref that moves later
does not change a plan already made.

Network use is bounded to what is needed: the ref is resolved with ``ls-remote`` (no
``ls-remote`` at all for a full commit sha already cached), and objects are fetched only
when that commit is not cached yet. Credentials travel in the environment only
(``bot.checkout.auth_env``), never in ``.git/config``, a log line or an error.

The tree is written by the bot itself: symlinks stay symlinks (never followed), submodules
are left out, names ``.``/``..``/``.git`` are refused, and size and file count are bounded.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import git

from bot.checkout import auth_env, split_credentials
from bot.masking import Masker

MAX_PACKAGE_BYTES = 64 * 1024 * 1024
MAX_PACKAGE_FILES = 5000
GIT_TIMEOUT = 300
"""Seconds one ls-remote or fetch of a step source may take (a hung server or ssh)."""
_SHA = re.compile(r"[0-9a-f]{40}")


class SourceError(Exception):
    """A git source could not be resolved or fetched; the message is masked."""


class GitCache:
    """Fetches and pins git step sources under ``root``. ``fetches`` counts object fetches
    (a moved ref, a new source) since this object was made: a ref that did not move costs
    one ``ls-remote`` and no fetch."""

    def __init__(self, root: Path, *, token: str = "") -> None:
        self.root = root
        self.token = token
        self.fetches = 0

    def pin(self, url: str, ref: str, ssh_key_file: str | None = None) -> tuple[str, Path]:
        """``(commit, directory)`` of ``ref`` in the repository at ``url``: the commit the
        ref points at now, and the package files of that commit. Raises ``SourceError``."""
        masker = self._masker(url)
        env = auth_env(url, self.token, ssh_key_file)
        plain_url, _, _ = split_credentials(url)
        home = self.root / hashlib.sha256(plain_url.encode()).hexdigest()[:24]
        home.mkdir(parents=True, exist_ok=True, mode=0o700)
        with _locked(home / "lock"):
            if _SHA.fullmatch(ref) and (home / "commits" / ref).is_dir():
                return ref, home / "commits" / ref
            try:
                repo = _bare(home / "repo")
                with repo.git.custom_environment(**env):
                    sha = ref if _SHA.fullmatch(ref) else _ls_remote(repo, plain_url, ref)
                    target = home / "commits" / sha
                    if target.is_dir():
                        return sha, target
                    self.fetches += 1
                    sha = _fetch(repo, plain_url, sha, ref)
                    target = home / "commits" / sha
                    if not target.is_dir():
                        _write_tree(repo.commit(sha).tree, home / "commits", sha)
            except git.GitCommandError as err:
                raise SourceError(masker.mask(_reason(err))) from None
            except (ValueError, git.BadName) as err:
                raise SourceError(masker.mask(f"cannot read the fetched commit: {err}")) from None
            return sha, target

    def _masker(self, url: str) -> Masker:
        _, _, password = split_credentials(url)
        values = [password]
        if self.token:
            values += [
                self.token,
                base64.b64encode(f"x-access-token:{self.token}".encode()).decode(),
            ]
        return Masker([v for v in values if v])


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """One fetch per source at a time (workers share the cache)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _bare(path: Path) -> git.Repo:
    if (path / "HEAD").is_file():
        return git.Repo(path)
    return git.Repo.init(path, bare=True)


def _ls_remote(repo: git.Repo, url: str, ref: str) -> str:
    """The commit ``ref`` names on the remote: ``HEAD``, a branch, a tag (peeled), or a
    full ref name; raises ``SourceError`` when the remote has no such ref."""
    # Every ref, not a pattern: with a pattern, protocol v2 leaves out a tag's peeled line.
    out = str(repo.git.ls_remote(url, kill_after_timeout=GIT_TIMEOUT))
    found: dict[str, str] = {}
    for line in out.splitlines():
        sha, _, name = line.partition("\t")
        found[name] = sha
    # A branch wins over a tag of the same name; an annotated tag is peeled to its commit.
    for name in (ref, f"refs/heads/{ref}", f"refs/tags/{ref}^{{}}", f"refs/tags/{ref}"):
        if name in found:
            return found[name]
    raise SourceError(f"the repository has no branch or tag {ref!r}")


def _fetch(repo: git.Repo, url: str, sha: str, ref: str) -> str:
    """Fetches ``sha`` (only that commit); a server that refuses a fetch by sha gets the
    ref fetched instead, and the commit it names then is the one used."""
    try:
        repo.git.fetch(
            "--quiet", "--depth=1", "--no-tags", url, sha, kill_after_timeout=GIT_TIMEOUT
        )
        return sha
    except git.GitCommandError:
        if ref == sha:
            raise
    repo.git.fetch("--quiet", "--depth=1", "--no-tags", url, ref, kill_after_timeout=GIT_TIMEOUT)
    return str(repo.rev_parse("FETCH_HEAD^{commit}").hexsha)


def _write_tree(tree: git.Tree, commits: Path, sha: str) -> None:
    """Writes ``tree`` to ``commits/<sha>`` through a fresh temp dir and a rename, so a
    half-written package is never used."""
    commits.mkdir(exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=commits))
    try:
        budget = [MAX_PACKAGE_BYTES, MAX_PACKAGE_FILES]
        _write_entries(tree, tmp, budget)
        os.rename(tmp, commits / sha)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _write_entries(tree: git.Tree, dest: Path, budget: list[int]) -> None:
    for item in tree:
        name = item.name
        if name in ("", ".", "..", ".git") or "/" in name or "\0" in name:
            raise SourceError(f"the step repository has a file named {name!r}; refused")
        budget[1] -= 1
        if budget[1] < 0:
            raise SourceError(f"the step repository has over {MAX_PACKAGE_FILES} files")
        path = dest / name
        if item.type == "tree":
            path.mkdir(mode=0o755)
            _write_entries(item, path, budget)
        elif item.type == "blob":
            budget[0] -= item.size
            if budget[0] < 0:
                raise SourceError(f"the step repository is over {MAX_PACKAGE_BYTES // 2**20} MiB")
            data = item.data_stream.read()
            if item.mode == 0o120000:  # a symlink: kept as one, never followed
                os.symlink(data.decode("utf-8", "surrogateescape"), path)
            else:
                fd = os.open(
                    path,
                    os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW,
                    0o755 if item.mode & 0o111 else 0o644,
                )
                with os.fdopen(fd, "wb") as handle:
                    handle.write(data)
        # submodules (commits) are left out: a package is its own tree


def _reason(err: git.GitCommandError) -> str:
    text = (err.stderr or "").strip().replace("stderr:", "").strip(" '\n")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:300] if lines else f"git exited {err.status}"
