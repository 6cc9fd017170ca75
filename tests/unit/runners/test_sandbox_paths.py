"""What a sandbox shows of the host and how the bot's own files are hidden inside it
(``bot.runners.sandbox_paths``). ``system_binds`` is checked against this host's own
``/``; ``hiding_binds`` against real trees, links and files under ``tmp_path``."""

from __future__ import annotations

import fnmatch
import os
from pathlib import Path

from bot.runners.sandbox_paths import ETC_ENTRIES, MERGED_USR, hiding_binds, system_binds


def triples(args: list[str]) -> list[tuple[str, str, str]]:
    """``args`` read as (option, source, destination) where an option takes two values."""
    found = []
    for i, arg in enumerate(args):
        if arg in ("--ro-bind", "--ro-bind-try", "--symlink"):
            found.append((arg, args[i + 1], args[i + 2]))
    return found


# -- system_binds --------------------------------------------------------------------------


def test_usr_and_the_merged_usr_entries_as_the_host_has_them() -> None:
    args, shown = system_binds()
    assert args[:3] == ["--ro-bind", "/usr", "/usr"] and shown[0] == "/usr"
    for name in MERGED_USR:
        host = f"/{name}"
        if os.path.islink(host):
            assert ("--symlink", os.readlink(host), host) in triples(args)
            assert host not in shown
        elif os.path.isdir(host):
            assert ("--ro-bind", host, host) in triples(args) and host in shown
        else:
            assert host not in args


def test_only_whitelisted_etc_entries_are_shown_read_only_each_at_its_path() -> None:
    args, shown = system_binds()
    etc = [t for t in triples(args) if t[2].startswith("/etc/")]
    assert etc, "this host has none of the whitelisted /etc entries"
    assert args.index("--dir") < args.index(etc[0][1]) and args[args.index("--dir") + 1] == "/etc"
    for option, source, destination in etc:
        assert option == "--ro-bind-try" and source == destination and destination in shown
        name = destination.removeprefix("/etc/")
        assert any(fnmatch.fnmatch(name, pattern) for pattern in ETC_ENTRIES), name
    bound = {t[2] for t in etc}
    for secret in ("/etc/shadow", "/etc/ssl/private", "/etc/passwd", "/etc/pip.conf"):
        assert secret not in bound
    for present in ("/etc/hosts", "/etc/resolv.conf", "/etc/os-release"):
        assert (present in bound) == os.path.lexists(present)


# -- hiding_binds --------------------------------------------------------------------------


def tree(root: Path) -> tuple[Path, Path, Path]:
    """``root/shown`` holding a ``data`` directory (with a ``store`` file) and a ``key``."""
    shown = root / "shown"
    (shown / "data").mkdir(parents=True)
    (shown / "data" / "store").write_text("s")
    (shown / "key").write_text("k")
    return shown, shown / "data", shown / "key"


def test_a_hidden_file_becomes_dev_null_and_a_directory_an_empty_tmpfs(tmp_path: Path) -> None:
    shown, data, key = tree(tmp_path)
    args, emptied = hiding_binds([str(shown)], [str(key), str(data)])
    assert args == ["--tmpfs", str(data), "--ro-bind", "/dev/null", str(key)]
    assert emptied == [str(data)]


def test_what_is_missing_or_not_shown_is_left_alone(tmp_path: Path) -> None:
    shown, _, _ = tree(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    assert hiding_binds([str(shown)], [str(elsewhere), str(shown / "missing")]) == ([], [])
    assert hiding_binds([str(shown)], []) == ([], [])


def test_inside_a_hidden_directory_nothing_more_is_mounted(tmp_path: Path) -> None:
    shown, data, _ = tree(tmp_path)
    args, emptied = hiding_binds([str(shown)], [str(data / "store"), str(data)])
    assert args == ["--tmpfs", str(data)] and emptied == [str(data)]


def test_a_link_to_a_hidden_file_hides_the_file_where_it_is_shown(tmp_path: Path) -> None:
    shown, _, key = tree(tmp_path)
    alias = tmp_path / "key-link"
    alias.symlink_to(key)
    args, _ = hiding_binds([str(shown)], [str(alias)])
    assert args == ["--ro-bind", "/dev/null", str(key)]


def test_a_file_is_hidden_at_every_place_a_shown_link_makes_it_appear(tmp_path: Path) -> None:
    """``/etc/os-release`` and ``/usr/lib/os-release`` are one file."""
    shown, _, key = tree(tmp_path)
    link = tmp_path / "also-shown"
    link.symlink_to(shown)
    args, _ = hiding_binds([str(shown), str(link)], [str(key)])
    assert args == [
        "--ro-bind", "/dev/null", str(link / "key"),
        "--ro-bind", "/dev/null", str(key),
    ]  # fmt: skip


def test_a_shown_path_inside_a_hidden_directory_is_shown_again_and_its_secrets_hidden(
    tmp_path: Path,
) -> None:
    """An exposed tool directory in the bot's home: the home is emptied, the tools bound
    again after it, and a secret among the tools covered last (the deepest mount wins)."""
    home = tmp_path / "home"
    tools = home / "tools"
    tools.mkdir(parents=True)
    (tools / "token").write_text("t")
    args, emptied = hiding_binds([str(home), str(tools)], [str(home), str(tools / "token")])
    assert args == [
        "--tmpfs", str(home),
        "--ro-bind-try", str(tools), str(tools),
        "--ro-bind", "/dev/null", str(tools / "token"),
    ]  # fmt: skip
    assert emptied == [str(home)]


def test_a_path_both_shown_and_hidden_is_hidden(tmp_path: Path) -> None:
    shown, data, _ = tree(tmp_path)
    args, emptied = hiding_binds([str(shown), str(data)], [str(data)])
    assert args == ["--tmpfs", str(data)] and emptied == [str(data)]
