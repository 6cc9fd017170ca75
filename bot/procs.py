"""Names for this bot process, and whether the process a name stands for still runs: what
the store's claims, the docker runner's box containers and the daemonless pusher's spool
directories are named after, so that a running bot can clean up after a dead one."""

from __future__ import annotations

import os
import socket
import uuid
from pathlib import Path

# Tells this process apart from an earlier one that had the same host name and pid (a
# restarted container is often pid 1 again).
PROCESS_TOKEN = uuid.uuid4().hex[:12]


def worker_name(tag: str = "") -> str:
    """``host:pid:token[:tag]``: enough for ``recover_dead`` to tell whether the claimer
    is still alive."""
    return f"{socket.gethostname()}:{os.getpid()}:{PROCESS_TOKEN}" + (f":{tag}" if tag else "")


def _pid_alive(pid: int) -> bool:
    """Whether process ``pid`` (on this host) may still run. Dead: no such process, or a
    zombie (state Z or X in ``/proc/<pid>/stat``): it has exited and only waits for its
    parent to reap it, which can take any time, so waiting for it to vanish would hold
    recovery up."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's process: it exists
    return _proc_state(pid) not in ("Z", "X")


def _proc_state(pid: int) -> str:
    """The state letter of ``/proc/<pid>/stat``; "" when it cannot be read (no /proc)."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_bytes()
    except FileNotFoundError:
        return "X"  # gone since os.kill looked
    except OSError:
        return ""
    # "pid (comm) S ...": comm may hold spaces and parentheses, so the state is the first
    # field after the last ")".
    fields = raw[raw.rfind(b")") + 1 :].split()
    return fields[0].decode("ascii", "replace") if fields else ""


def process_alive(owner: str) -> bool | None:
    """Whether the process a ``worker_name`` (``host:pid:token[:tag]``) names still runs:
    True or False on this host (False also for this pid under an earlier token: a restarted
    container reuses pids), None for another host or a name without a pid (cannot tell)."""
    parts = owner.split(":")
    pid = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
    token = parts[2] if len(parts) > 2 else ""
    if parts[0] != socket.gethostname() or not pid:
        return None
    if pid == os.getpid():
        return token == PROCESS_TOKEN
    return _pid_alive(pid)
