"""Step packages for tests, written into real local git repositories (``gitrepo.Remote``)
and configured through the bot's ``[steps]`` table.

``manifest`` writes either generation (wercker-steps.md §1.1): ``step.yml`` with a list of
properties, or ``wercker-step.yml`` with a mapping of them."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from tests.harness.gitrepo import Remote, git, make_remote


def manifest(name: str, properties: dict[str, Any], *, generation: int = 2) -> str:
    """A manifest for ``name`` declaring ``properties`` (name → default, ``None``: none).
    Generation 1 is ``wercker-step.yml``'s mapping, generation 2 ``step.yml``'s list."""
    if generation == 1:
        props: Any = {
            k: ({"type": "string"} if v is None else {"type": "string", "default": v})
            for k, v in properties.items()
        }
        doc = {"name": name, "version": "1.0.0", "description": "test step", "properties": props}
    else:
        props = [
            {"name": k, "type": "string", **({} if v is None else {"default": v})}
            for k, v in properties.items()
        ]
        doc = {"name": name, "version": "1.0.0", "summary": "test step", "properties": props}
    return yaml.safe_dump(doc, sort_keys=False)


def step_repo(
    root: Path,
    name: str,
    run_sh: str,
    properties: dict[str, Any] | None = None,
    *,
    generation: int = 2,
    extra: dict[str, str] | None = None,
) -> Remote:
    """A git repository (bare remote + work tree under ``root``) holding one step package
    on ``main``."""
    remote = make_remote(root)
    filename = "wercker-step.yml" if generation == 1 else "step.yml"
    files = {
        filename: manifest(name, properties or {}, generation=generation),
        "run.sh": run_sh,
        **(extra or {}),
    }
    remote.commit(files, branch="main", message=f"step {name}")
    return remote


def commit_symlink(remote: Remote, name: str, target: str, branch: str = "main") -> str:
    """Replaces ``name`` in the step repository with a symlink to ``target``, commits and
    pushes; returns the sha."""
    path = remote.work / name
    if path.exists() or path.is_symlink():
        path.unlink()
    os.symlink(target, path)
    git(remote.work, "add", "-A")
    git(remote.work, "commit", "-q", "-m", f"link {name}")
    git(remote.work, "push", "-q", "origin", f"HEAD:refs/heads/{branch}")
    return git(remote.work, "rev-parse", "HEAD")


def source(remote: Remote, ref: str = "main") -> dict[str, str]:
    """The ``[steps]`` entry serving ``remote`` at ``ref``."""
    return {"git": remote.url, "ref": ref}
