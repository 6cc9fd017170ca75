"""Finding and loading a wercker.yml: the public entry points of ``bot.wercker``.

``find_file``, ``load_dir``, ``load_path``, ``load_text``. Nothing here raises for any input:
every finding is a ``Problem`` (all of them at once, sorted by position), and the file is
``None`` only when nothing usable could be read (invalid YAML, an empty file, a top level that
is not a mapping). How nodes become the model, and the choices made there, is in ``nodes``.
"""

from __future__ import annotations

from pathlib import Path

from bot.wercker import lint, nodes
from bot.wercker.model import Problem, WerckerFile

FILE_NAMES = ("wercker.yml", ".wercker.yml")


def find_file(directory: Path) -> Path | None:
    """``wercker.yml``, else ``.wercker.yml`` in ``directory``; no other names (as Wercker)."""
    for name in FILE_NAMES:
        candidate = directory / name
        if candidate.is_file():
            return candidate
    return None


def load_dir(directory: Path) -> tuple[WerckerFile | None, list[Problem], Path | None]:
    """Finds and loads the wercker.yml of a checkout. The path is ``None`` when there is no
    file (not an error: the caller reports "Skipped: no wercker.yml")."""
    path = find_file(directory)
    if path is None:
        return None, [], None
    wf, problems = load_path(path, path.name)
    return wf, problems, path


def load_path(path: Path, filename: str | None = None) -> tuple[WerckerFile | None, list[Problem]]:
    """Reads ``path`` as UTF-8 and loads it; unreadable files become an error problem."""
    name = filename or path.name
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as err:
        return None, [nodes.file_error(name, f"is not UTF-8 text (bad byte at offset {err.start})")]
    except OSError as err:
        return None, [nodes.file_error(name, f"cannot be read: {err.strerror or err}")]
    return load_text(text, name)


def load_text(text: str, filename: str) -> tuple[WerckerFile | None, list[Problem]]:
    """Parses and lints ``text`` (runner-independent lint; see ``lint.lint_for_runner``).

    Returns every problem found, errors and warnings, in file order.
    """
    try:
        wf, problems = nodes.read(text, filename)
        if wf is not None:
            problems.extend(lint.lint_file(wf))
    except Exception as err:  # a bug must not turn into a crashed build; report it located
        return None, [nodes.file_error(filename, f"could not be read (internal error: {err!r})")]
    problems.sort(key=lambda p: (p.loc.line, p.loc.col))
    return wf, problems
