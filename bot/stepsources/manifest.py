"""Reading a step package's metadata without trusting the package.

``inspect_package`` opens the package directory and its files relative to a directory fd,
never through a link (``O_NOFOLLOW``): a step repository that makes ``step.yml`` or
``run.sh`` a symlink to a host file is refused, not read. Sizes are bounded.

Both manifest generations are read (wercker-steps.md §1.1): ``step.yml`` (``properties`` a
list of ``{name, default, ...}``) first, else ``wercker-step.yml`` (``properties`` a mapping
from name to ``{default, ...}``). Defaults are the raw YAML text of the scalar. A manifest
that does not parse is a warning and the step runs with no defaults, as the CLI did.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from bot.stepsources import Property

MANIFESTS = ("step.yml", "wercker-step.yml")
MAX_MANIFEST_BYTES = 256 * 1024
_NULL = "tag:yaml.org,2002:null"


class PackageError(Exception):
    """The directory is not a usable step package; the message says why."""


@dataclass
class PackageInfo:
    """What ``inspect_package`` found: the manifest read (``None``: none usable), the
    manifest's ``version`` (``""`` when absent), the declared properties, and warnings."""

    manifest: str | None = None
    version: str = ""
    properties: tuple[Property, ...] = ()
    warnings: list[str] = field(default_factory=list)


def inspect_package(directory: Path) -> PackageInfo:
    """Checks that ``directory`` is a real directory with a regular ``run.sh`` and reads its
    manifest. Raises ``PackageError`` for a missing or linked ``run.sh``, a linked manifest,
    or a directory that is itself a link."""
    try:
        dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as err:
        raise PackageError(f"{directory} is not a directory ({err.strerror})") from None
    try:
        _regular(dir_fd, "run.sh", required=True)
        info = PackageInfo()
        for name in MANIFESTS:
            data = _read(dir_fd, name)
            if data is None:
                continue
            info.manifest = name
            try:
                info.version, info.properties = parse_manifest(data, generation=name)
            except (yaml.YAMLError, ValueError) as err:
                info.warnings.append(f"{name} cannot be read ({_short(err)}); no defaults")
                info.manifest = None
            break
        return info
    finally:
        os.close(dir_fd)


def _regular(dir_fd: int, name: str, *, required: bool) -> bool:
    try:
        mode = os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode
    except FileNotFoundError:
        if required:
            raise PackageError(f"the package has no {name}") from None
        return False
    if stat.S_ISLNK(mode):
        raise PackageError(f"{name} is a symlink; a step package's {name} must be a file")
    if not stat.S_ISREG(mode):
        raise PackageError(f"{name} is not a regular file")
    return True


def _read(dir_fd: int, name: str) -> bytes | None:
    """The file's bytes, ``None`` when it does not exist; never through a link."""
    if not _regular(dir_fd, name, required=False):
        return None
    try:
        fd = os.open(
            name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dir_fd
        )
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise PackageError(f"{name} is a symlink") from None
        raise PackageError(f"cannot read {name}: {err.strerror}") from None
    with contextlib.closing(os.fdopen(fd, "rb")) as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise PackageError(f"{name} is not a regular file")
        data = handle.read(MAX_MANIFEST_BYTES + 1)
    if len(data) > MAX_MANIFEST_BYTES:
        raise PackageError(f"{name} is larger than {MAX_MANIFEST_BYTES // 1024} KiB")
    return data


def parse_manifest(data: bytes, *, generation: str) -> tuple[str, tuple[Property, ...]]:
    """``(version, properties)`` of a manifest. Either shape of ``properties`` is accepted
    whatever the file is called (hybrid files exist). Raises ``ValueError``/``YAMLError``."""
    root = yaml.compose(data.decode("utf-8", "replace"), Loader=yaml.SafeLoader)
    if root is None:
        return "", ()
    if not isinstance(root, MappingNode):
        raise ValueError(f"{generation} must be a mapping")
    version, props = "", None
    for key, value in root.value:
        if isinstance(key, ScalarNode) and key.value == "version":
            version = _text(value)
        elif isinstance(key, ScalarNode) and key.value == "properties":
            props = value
    return version, _properties(props)


def _properties(node: Node | None) -> tuple[Property, ...]:
    out: list[Property] = []
    if node is None or (isinstance(node, ScalarNode) and node.tag == _NULL):
        return ()
    if isinstance(node, MappingNode):  # generation 1: name -> {default, ...}
        for key, value in node.value:
            out.append(Property(_text(key), _field(value, "default")))
    elif isinstance(node, SequenceNode):  # generation 2: [{name, default, ...}]
        for item in node.value:
            name = _field(item, "name")
            if name:
                out.append(Property(name, _field(item, "default")))
    else:
        raise ValueError("properties must be a mapping or a list")
    return tuple(p for p in out if p.name)


def _field(node: Node, name: str) -> str:
    if not isinstance(node, MappingNode):
        return ""
    for key, value in node.value:
        if isinstance(key, ScalarNode) and key.value == name:
            return _text(value)
    return ""


def _text(node: Node) -> str:
    """A scalar's source text (``true`` stays ``true``, ``1.10`` stays ``1.10``); null and
    anything but a scalar are ``""``, as Wercker's YAML decoder gave."""
    if not isinstance(node, ScalarNode) or node.tag == _NULL:
        return ""
    return str(node.value)


def _short(err: Exception) -> str:
    return str(err).splitlines()[0][:200] if str(err) else type(err).__name__
