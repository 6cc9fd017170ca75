"""Where layers are built before they are uploaded, one spool per process, and the sweep
that removes the spools of crashed processes."""

from __future__ import annotations

import contextlib
import logging
import shutil
import time
from pathlib import Path

from bot.procs import process_alive, worker_name

# A spool whose owner cannot be asked (another host's, or a loose layer file of an earlier
# version) goes once nothing has been written to it for this long. A layer is written
# continuously while it is built, so a live build's spool never looks this old; only a
# finished layer still uploading over a slow link could.
UNOWNED_SPOOL_SECONDS = 15 * 60

logger = logging.getLogger(__name__)


def spool_dir(tmp_dir: Path) -> Path:
    """This process's directory for layers being built, named by ``worker_name()``
    (``host:pid:token``) so that a sweep can tell whether its owner still runs."""
    return tmp_dir / worker_name()


def _last_write(path: Path) -> float:
    """The newest mtime in ``path`` (a file, or a directory and the files in it)."""
    newest = path.lstat().st_mtime
    if path.is_dir():
        for child in path.iterdir():
            with contextlib.suppress(OSError):
                newest = max(newest, child.lstat().st_mtime)
    return newest


def sweep_spool(tmp_dir: Path, now: float | None = None) -> list[Path]:
    """Removes layers that crashed pushes left under ``tmp_dir`` (a push removes its own
    once uploaded) and returns what went: every spool directory whose owning process is
    gone (``process_alive``: no such pid, a zombie, or its pid under an earlier token), at
    once; and what no live process can be asked about (another host's spool, loose
    ``layer-*.tar.gz`` files from before spools were per process) once unwritten for
    ``UNOWNED_SPOOL_SECONDS``. This process's own spool is never touched."""
    cutoff = (time.time() if now is None else now) - UNOWNED_SPOOL_SECONDS
    removed: list[Path] = []
    try:
        children = list(tmp_dir.iterdir())
    except OSError:
        return removed
    for path in children:
        try:
            if path.is_dir() and not path.is_symlink():
                alive = process_alive(path.name)
                if alive is False or (alive is None and _last_write(path) < cutoff):
                    shutil.rmtree(path)
                    removed.append(path)
            elif path.name.startswith("layer-") and path.lstat().st_mtime < cutoff:
                path.unlink()
                removed.append(path)
        except OSError as err:  # one that cannot go must not stop the others
            logger.warning("cannot remove the leftover layer spool %s: %s", path, err)
    return removed
