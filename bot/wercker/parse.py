"""Finding and loading a wercker.yml: the public entry points of ``bot.wercker``.

``find_file``, ``load_dir``, ``load_path``, ``load_text``. Nothing here raises for any input:
every finding is a ``Problem`` (all of them at once, sorted by position), and the file is
``None`` only when nothing usable could be read (invalid YAML, an empty file, a top level that
is not a mapping). How nodes become the model, and the choices made there, is in ``nodes``.
"""

from __future__ import annotations

import os
from pathlib import Path

from bot.wercker import lint, nodes
from bot.wercker.model import Loc, Problem, WerckerFile

FILE_NAMES = ("wercker.yml", ".wercker.yml")
MAX_FILE_BYTES = 1_000_000
"""Larger files are refused unread (1 MB): the biggest of 150 real files is a few kB, and
linting megabytes takes seconds of a worker, for every build."""


def find_file(directory: Path) -> Path | None:
    """``wercker.yml``, else ``.wercker.yml`` in ``directory``; no other names (as Wercker).
    A symbolic link counts as the file (``load_dir`` decides whether it may be read)."""
    for name in FILE_NAMES:
        candidate = directory / name
        if candidate.is_symlink() or candidate.is_file():
            return candidate
    return None


def inside(directory: Path, path: Path) -> Path | None:
    """``path`` with its links resolved, when that stays inside ``directory``; else
    ``None``. A checkout is the pushed commit's to shape: a link in it may point anywhere on
    the bot's host, and the bot reads only what lies inside the checkout."""
    root = Path(os.path.realpath(directory))
    real = Path(os.path.realpath(path))
    return real if real == root or real.is_relative_to(root) else None


def load_dir(directory: Path) -> tuple[WerckerFile | None, list[Problem], Path | None]:
    """Finds and loads the wercker.yml of a checkout. The path is ``None`` when there is no
    file (not an error: the caller reports "Skipped: no wercker.yml"). A file that is a link
    leaving the checkout is an error, never read."""
    path = find_file(directory)
    if path is None:
        return None, [], None
    real = inside(directory, path)
    if real is None:
        problem = nodes.file_error(
            path.name,
            "is a symbolic link to a path outside the repository; the bot reads only files "
            "inside the checkout: commit the file itself",
        )
        return None, [problem], path
    wf, problems = load_path(real, path.name)
    return wf, problems, path


def load_path(path: Path, filename: str | None = None) -> tuple[WerckerFile | None, list[Problem]]:
    """Reads ``path`` as UTF-8 and loads it; unreadable files become an error problem, and
    so does a file over ``MAX_FILE_BYTES`` (reading stops just past the limit)."""
    name = filename or path.name
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
            if len(data) > MAX_FILE_BYTES:
                size = max(os.fstat(handle.fileno()).st_size, len(data))
                return None, [_too_big(name, size)]
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        return None, [nodes.file_error(name, f"is not UTF-8 text (bad byte at offset {err.start})")]
    except OSError as err:
        return None, [nodes.file_error(name, f"cannot be read: {err.strerror or err}")]
    return load_text(text, name)


def load_text(text: str, filename: str) -> tuple[WerckerFile | None, list[Problem]]:
    """Parses and lints ``text`` (runner-independent lint; see ``lint.lint_for_runner``).

    Returns every problem found, errors and warnings, in file order. Text over
    ``MAX_FILE_BYTES`` of UTF-8 is refused unparsed, as ``load_path`` does.
    """
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_FILE_BYTES:
        return None, [_too_big(filename, size)]
    try:
        wf, problems = nodes.read(text, filename)
        if wf is not None:
            problems.extend(lint.lint_file(wf))
    except Exception as err:  # a bug must not turn into a crashed build; report it located
        return None, [nodes.file_error(filename, f"could not be read (internal error: {err!r})")]
    problems.sort(key=lambda p: (p.loc.line, p.loc.col))
    return wf, problems


def _too_big(filename: str, size: int) -> Problem:
    """``wercker.yml is 2.4 MB; the limit is 1 MB`` (in bytes when the sizes round alike)."""
    shown, limit = f"{size / 1e6:.1f} MB", f"{MAX_FILE_BYTES / 1e6:g} MB"
    if shown == f"{MAX_FILE_BYTES / 1e6:.1f} MB":
        shown, limit = f"{size:,} bytes", f"{MAX_FILE_BYTES:,} bytes"
    return Problem(
        Loc(filename, 1, 1),
        "error",
        f"{filename} is {shown}; the limit is {limit}",
        "move long scripts into files in the repository and run them from a step",
    )
