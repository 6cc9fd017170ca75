"""What a sandbox shows of the host, and how the bot's own files are hidden inside that.

``system_binds()``: ``/usr``, the merged-usr links and the whitelisted ``/etc`` entries, all
read-only. ``hiding_binds(shown, hide)``: the mounts that cover each hidden path wherever
the shown ones make it appear. ``Sandbox.launch`` (``bot.runners.sandbox``) puts them in
the bwrap command line.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Sequence
from pathlib import Path

MERGED_USR = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")
"""Top-level directories that merged-usr hosts make links into ``/usr`` (older hosts keep
them as directories; either way the sandbox shows them as the host has them)."""

ETC_ENTRIES = (
    # name resolution and the network (the step keeps the host's network)
    "hosts",
    "resolv.conf",
    "nsswitch.conf",
    "host.conf",
    "gai.conf",
    "protocols",
    "services",
    "networks",
    # TLS trust: only the public certificates, never /etc/ssl/private
    "ssl/certs",
    "ssl/openssl.cnf",
    "ca-certificates",
    "ca-certificates.conf",
    "pki/tls/certs",
    "pki/ca-trust/extracted",
    # the dynamic linker, alternatives and what tools link into /etc from /usr
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "alternatives",
    "java-*",
    "python3*",
    "perl",
    "maven",
    # time, identity of the distribution, shells, file types
    "localtime",
    "timezone",
    "os-release",
    "lsb-release",
    "debian_version",
    "shells",
    "profile",
    "bash.bashrc",
    "inputrc",
    "terminfo",
    "gitconfig",
    "mime.types",
    "magic",
    "magic.mime",
    "fonts",
)
"""The ``/etc`` entries a step may read (globs allowed), each shown read-only when it exists.
A whitelist because ``/etc`` may hold host keys and the bot's own env files. Files a step
might find credentials in (``pip.conf``, ``npmrc``, ``environment``) are left out: expose
them with ``sandbox_expose`` on purpose."""


def system_binds() -> tuple[list[str], list[str]]:
    """The host's tools, read-only, and the whitelisted ``/etc``: the arguments and
    the paths they bind (each at its own path)."""
    shown = ["/usr"]
    args = ["--ro-bind", "/usr", "/usr"]
    for name in MERGED_USR:
        host = f"/{name}"
        if os.path.islink(host):
            args += ["--symlink", os.readlink(host), host]
        elif os.path.isdir(host):
            args += ["--ro-bind", host, host]
            shown.append(host)
    args += ["--dir", "/etc"]
    for pattern in ETC_ENTRIES:
        for host in sorted(glob.glob(f"/etc/{pattern}")):
            # A link (``resolv.conf`` into /run, ``localtime`` into /usr) is bound as
            # what it points to: the sandbox has no /run. ``-try``: a dangling link, or
            # an entry gone since the glob, is skipped rather than failing the step.
            args += ["--ro-bind-try", host, host]
            shown.append(host)
    return args, shown


def hiding_binds(shown: Sequence[str], hide: Sequence[str]) -> tuple[list[str], list[str]]:
    """The bwrap arguments that hide, in the sandbox, each of ``hide`` that exists and lies
    under one of ``shown`` (paths bound read-only at their own path). The sandbox shows a
    bound path's target (links resolved) at that path, so a hidden file is looked for, links
    resolved, under each target and covered at each place it appears: ``/etc/os-release`` and
    ``/usr/lib/os-release`` are one file. A shown path inside a hidden directory is bound
    again after it; the deepest mount wins, and a path both shown and hidden is hidden.
    Also returns the directories it covers with a tmpfs, to be made read-only last."""
    binds = [(Path(p), Path(os.path.realpath(p))) for p in shown]
    covered: dict[Path, bool] = {}  # where, in the sandbox -> is a directory
    for raw in hide:
        real = Path(os.path.realpath(raw))
        if not real.exists():
            continue
        for at, target in binds:
            if real == target or target in real.parents:
                covered[at / real.relative_to(target)] = real.is_dir()
    dirs = [d for d, is_dir in covered.items() if is_dir]
    again = {at for at, _ in binds if any(d in at.parents for d in dirs)}
    # (depth, 0: show / 1: hide, path): parents first, hiding last at the same path.
    mounts = sorted(
        [(len(p.parts), 0, p) for p in again] + [(len(p.parts), 1, p) for p in covered],
        key=lambda m: (m[0], m[1], str(m[2])),
    )
    args: list[str] = []
    emptied: list[str] = []
    for _, hiding, path in mounts:
        enclosing = [(n, h) for n, h, p in mounts if p in path.parents and (h == 0 or covered[p])]
        if enclosing and max(enclosing)[1] == 1 and hiding:
            continue  # already inside an empty tmpfs, and not shown again on the way
        if not hiding:
            args += ["--ro-bind-try", str(path), str(path)]
        elif covered[path]:
            args += ["--tmpfs", str(path)]
            emptied.append(str(path))
        else:
            args += ["--ro-bind", "/dev/null", str(path)]
    return args, emptied
